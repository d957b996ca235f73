"""Translation head: predict one modality's (encoded) values from a representation of others, e.g. RNA → protein.

Usable on its own (``forward`` gives predictions on the scale of the loss: values for ``mse``, rates for
``poisson``, probabilities for ``bernoulli``) and as an auxiliary loss of a fused model (``train.translation``):
predicting the target modality from each source modality's embedding ties the embeddings to shared content, so the
fused model leans less on a modality that may be missing (co-learning). ``loss`` counts only rows that have both.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from ..encoders.base import mlp

LOSSES = ("mse", "poisson", "bernoulli")


class TranslationHead(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, hidden: int = 128, loss: str = "mse", dropout: float = 0.1) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        self.kind = loss
        self.net = mlp([in_dim, hidden, out_dim] if hidden else [in_dim, out_dim], dropout)

    def raw(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = self.raw(h)
        if self.kind == "poisson":
            return torch.exp(out)
        if self.kind == "bernoulli":
            return torch.sigmoid(out)
        return out

    def loss(self, h: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean loss over the rows where ``mask`` holds (0 when none)."""
        if not mask.any():
            return h.sum() * 0.0
        out, y = self.raw(h[mask]), target[mask].float()
        if self.kind == "poisson":
            per = F.poisson_nll_loss(out, y, log_input=True, reduction="none")
        elif self.kind == "bernoulli":
            per = F.binary_cross_entropy_with_logits(out, (y > 0).float(), reduction="none")
        else:
            per = (out - y) ** 2
        return per.mean()
