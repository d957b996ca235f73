"""Max fusion: elementwise maximum over the present modalities' projected embeddings."""
from __future__ import annotations

import torch

from .base import FUSIONS
from .sum import SumFusion


@FUSIONS.register("max")
class MaxFusion(SumFusion):
    """Project each modality to the fused width and take the elementwise max over present ones."""

    def pool(self, projected: torch.Tensor, presence: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fused = projected.masked_fill(presence[..., None] == 0, float("-inf")).amax(dim=1)
        fused = torch.where(torch.isfinite(fused), fused, torch.zeros_like(fused))
        winners = (projected == fused[:, None]).float() * presence[..., None]
        return fused, winners.mean(dim=2)
