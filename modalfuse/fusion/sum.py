"""Sum fusion: project every modality to a shared width and average over the present ones."""
from __future__ import annotations

import torch
from torch import nn

from .base import FUSIONS, Fusion, FusionOutput, masked_mean


@FUSIONS.register("sum")
class SumFusion(Fusion):
    """Project each modality to the fused width and sum, normalised by how many are present."""

    def __init__(self, in_dims: dict[str, int], out_dim: int, dropout: float = 0.0) -> None:
        super().__init__(in_dims, out_dim, dropout)
        self.proj = nn.ModuleDict({m: nn.Linear(d, out_dim) for m, d in in_dims.items()})
        self.post = nn.Sequential(nn.GELU(), nn.Dropout(dropout))

    def forward(self, embeddings: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> FusionOutput:
        projected = torch.stack([self.proj[m](embeddings[m]) for m in self.modalities], dim=1)
        pooled, weights = self.pool(projected, self.stack_masks(masks))
        return FusionOutput(self.post(pooled), weights=weights)

    def pool(self, projected: torch.Tensor, presence: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """projected [B, M, D], presence [B, M] → (pooled [B, D], per-modality weights [B, M]); max fusion overrides it."""
        return masked_mean(projected, presence), presence / presence.sum(1, keepdim=True).clamp(min=1)
