"""Multimodal mixup: interpolate every modality of two samples with one λ and mix their losses with the same λ.

Mixing happens on the encoder outputs (the per-modality embeddings, "manifold mixup" at the
fusion's input): that is the one place where every kind of modality is a continuous vector, so
text token ids, characters and categorical codes mix as consistently as images and audio.

Presence: a modality is kept in a mixed sample only when both samples of the pair have it (half
of a missing input would be a made-up one); a sample that shares no modality with its partner
is paired with itself, so it stays unmixed and keeps its own label.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch


@dataclass
class Mix:
    """One batch's mixing: weight ``lam`` for each sample, ``1 - lam`` for its ``partner``."""

    lam: float
    partner: torch.Tensor
    masks: dict[str, torch.Tensor]

    def embeddings(self, embeddings: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """λ·e_i + (1 − λ)·e_partner for every modality, zero where the mixed sample lacks the modality."""
        return {
            m: (self.lam * e + (1.0 - self.lam) * e[self.partner]) * self.masks[m][:, None].to(e.dtype)
            for m, e in embeddings.items()
        }

    def loss(
        self,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        out: torch.Tensor,
        target: torch.Tensor,
        rows: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """λ·loss(out, y) + (1 − λ)·loss(out, y_partner), optionally on a subset of ``rows``.

        For cross-entropy this equals the loss against the mixed label λ·y + (1 − λ)·y_partner.
        """
        other = target[self.partner]
        if rows is not None:
            out, target, other = out[rows], target[rows], other[rows]
        return self.lam * loss_fn(out, target) + (1.0 - self.lam) * loss_fn(out, other)


def draw_mix(masks: dict[str, torch.Tensor], alpha: float) -> Mix:
    """Pair each sample with a random other one of the batch and draw λ ~ Beta(alpha, alpha) for the batch (torch's global RNG)."""
    names = list(masks)
    present = torch.stack([masks[m] for m in names], dim=1)
    n, device = present.shape[0], present.device
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    partner = torch.randperm(n).to(device)
    shared = present & present[partner]
    alone = ~shared.any(dim=1)
    partner = torch.where(alone, torch.arange(n, device=device), partner)
    shared = torch.where(alone[:, None], present, shared)
    return Mix(lam, partner, {m: shared[:, i] for i, m in enumerate(names)})
