"""Max fusion: elementwise maximum over the present modalities' projected embeddings."""
from __future__ import annotations

import torch
from torch import nn

from .base import FUSIONS, Fusion, FusionOutput


@FUSIONS.register("max")
class MaxFusion(Fusion):
    """Project each modality to the fused width and take the elementwise max over present ones."""

    def __init__(self, in_dims: dict[str, int], out_dim: int, dropout: float = 0.0) -> None:
        super().__init__(in_dims, out_dim, dropout)
        self.proj = nn.ModuleDict({m: nn.Linear(d, out_dim) for m, d in in_dims.items()})
        self.post = nn.Sequential(nn.GELU(), nn.Dropout(dropout))

    def forward(self, embeddings: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> FusionOutput:
        projected = torch.stack([self.proj[m](embeddings[m]) for m in self.modalities], dim=1)
        presence = self.stack_masks(masks)
        fused = projected.masked_fill(presence[..., None] == 0, float("-inf")).amax(dim=1)
        fused = torch.where(torch.isfinite(fused), fused, torch.zeros_like(fused))
        winners = (projected == fused[:, None]).float() * presence[..., None]
        return FusionOutput(self.post(fused), weights=winners.mean(dim=2))
