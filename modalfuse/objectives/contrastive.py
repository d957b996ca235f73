"""Contrastive alignment: symmetric InfoNCE (CLIP) with a learnable, clamped temperature and in-batch negatives.

Rows where either modality of a pair is missing are left out of that pair's loss. With class labels,
``label_weight`` moves part of each row's target from its own partner to every same-class item of the
other modality (a supervised-contrastive target), which pulls classes together across modalities.
"""
from __future__ import annotations

import itertools
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


class Temperature(nn.Module):
    """A learnable softmax temperature τ, stored as log τ and clamped to ``[minimum, maximum]``."""

    def __init__(self, init: float = 0.07, minimum: float = 0.01, maximum: float = 1.0, learnable: bool = True) -> None:
        super().__init__()
        if not 0 < minimum <= init <= maximum:
            raise ValueError(f"temperature: need 0 < minimum ({minimum}) <= init ({init}) <= maximum ({maximum})")
        self.minimum, self.maximum = minimum, maximum
        self.log_tau = nn.Parameter(torch.tensor(math.log(init)), requires_grad=learnable)

    def forward(self) -> torch.Tensor:
        return self.log_tau.clamp(math.log(self.minimum), math.log(self.maximum)).exp()


def info_nce(
    a: torch.Tensor,
    b: torch.Tensor,
    temperature: torch.Tensor | float,
    labels: Optional[torch.Tensor] = None,
    label_weight: float = 0.0,
) -> torch.Tensor:
    """Symmetric InfoNCE between L2-normalised ``a`` [n, d] and ``b`` [n, d]; row i of each is a pair.

    The loss is the mean of the a→b and b→a cross-entropies over the similarity logits
    ``a @ b.T / temperature``. The target of row i is its partner i, or with ``labels`` and
    ``label_weight`` w: (1 - w) on the partner plus w spread evenly over the same-class items.
    """
    logits = a @ b.T / temperature
    target = torch.eye(len(a), device=a.device, dtype=logits.dtype)
    if labels is not None and label_weight > 0:
        same = (labels[:, None] == labels[None, :]).to(logits.dtype)
        target = (1 - label_weight) * target + label_weight * same / same.sum(dim=1, keepdim=True)
    forward = -(target * logits.log_softmax(dim=1)).sum(dim=1).mean()
    backward = -(target.T * logits.T.log_softmax(dim=1)).sum(dim=1).mean()
    return (forward + backward) / 2


def multi_info_nce(
    embeddings: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
    temperature: torch.Tensor | float,
    pairs: Optional[list[tuple[str, str]]] = None,
    labels: Optional[torch.Tensor] = None,
    label_weight: float = 0.0,
) -> torch.Tensor:
    """Mean symmetric InfoNCE over modality ``pairs`` (default: all pairs), each on the rows where both are present.

    Pairs with fewer than two complete rows in the batch are skipped; with none left the loss is 0.
    """
    pairs = pairs if pairs is not None else list(itertools.combinations(embeddings, 2))
    losses = []
    for m, n in pairs:
        both = masks[m] & masks[n]
        if int(both.sum()) < 2:
            continue
        losses.append(info_nce(embeddings[m][both], embeddings[n][both], temperature,
                               None if labels is None else labels[both], label_weight))
    if not losses:
        return next(iter(embeddings.values())).sum() * 0.0
    return torch.stack(losses).mean()


def normalise(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm (the shared space is the unit sphere)."""
    return F.normalize(x, dim=-1)
