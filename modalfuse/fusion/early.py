"""Early (feature-level) fusion: concatenate lightly encoded features, then one shared deep encoder."""
from __future__ import annotations

import torch
from torch import nn

from ..encoders.base import mlp
from .base import FUSIONS, Fusion, FusionOutput


@FUSIONS.register("early")
class EarlyFusion(Fusion):
    """Concatenate features (+ presence flags) early and learn a shared MLP over all of them."""

    def __init__(self, in_dims: dict[str, int], out_dim: int, dropout: float = 0.0, hidden: int = 256, layers: int = 2) -> None:
        super().__init__(in_dims, out_dim, dropout)
        self.missing = nn.ParameterDict({m: nn.Parameter(torch.zeros(d)) for m, d in in_dims.items()})
        width = sum(in_dims.values()) + len(in_dims)
        self.net = mlp([width] + [hidden] * layers + [out_dim], dropout, last_activation=True)

    def forward(self, embeddings: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> FusionOutput:
        parts = [torch.where(masks[m][:, None], embeddings[m], self.missing[m].expand_as(embeddings[m])) for m in self.modalities]
        return FusionOutput(self.net(torch.cat([*parts, self.stack_masks(masks)], dim=1)))
