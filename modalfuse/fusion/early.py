"""Early (feature-level) fusion: concatenate lightly encoded features, then one shared deep encoder."""
from __future__ import annotations

import torch
from torch import nn

from ..encoders.base import mlp
from .base import FUSIONS, Fusion, FusionOutput
from ..options import NonNegInt, Width


@FUSIONS.register("early")
class EarlyFusion(Fusion):
    """Concatenate features (+ presence flags) early and learn a shared MLP over all of them.

    ``layers=0`` keeps no shared layers: the output is the concatenation itself (its width replaces ``out_dim``),
    so a linear head on it, with identity encoders, is a linear model on the raw features.
    """

    def __init__(self, in_dims: dict[str, int], out_dim: int, dropout: float = 0.0, hidden: Width = 256, layers: NonNegInt = 2) -> None:
        width = sum(in_dims.values()) + len(in_dims)
        super().__init__(in_dims, out_dim if layers else width, dropout)
        self.missing = nn.ParameterDict({m: nn.Parameter(torch.zeros(d)) for m, d in in_dims.items()})
        self.net = mlp([width] + [hidden] * layers + [out_dim], dropout, last_activation=True) if layers else nn.Identity()

    def forward(self, embeddings: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> FusionOutput:
        parts = [torch.where(masks[m][:, None], embeddings[m], self.missing[m].expand_as(embeddings[m])) for m in self.modalities]
        return FusionOutput(self.net(torch.cat([*parts, self.stack_masks(masks)], dim=1)))
