"""Concatenation fusion with a learned stand-in for each missing modality."""
from __future__ import annotations

import torch
from torch import nn

from .base import FUSIONS, Fusion, FusionOutput


@FUSIONS.register("concat")
class ConcatFusion(Fusion):
    """Concatenate embeddings (a learned 'missing' vector replaces absent ones), then project."""

    def __init__(self, in_dims: dict[str, int], out_dim: int, dropout: float = 0.0) -> None:
        super().__init__(in_dims, out_dim, dropout)
        self.missing = nn.ParameterDict({m: nn.Parameter(torch.zeros(d)) for m, d in in_dims.items()})
        self.proj = nn.Sequential(nn.Linear(sum(in_dims.values()), out_dim), nn.GELU(), nn.Dropout(dropout))

    def forward(self, embeddings: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> FusionOutput:
        parts = [torch.where(masks[m][:, None], embeddings[m], self.missing[m].expand_as(embeddings[m])) for m in self.modalities]
        return FusionOutput(self.proj(torch.cat(parts, dim=1)))
