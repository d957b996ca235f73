"""Tensor Fusion Network (Zadeh et al. 2017): outer product of [h_m, 1] over all modalities.

The appended 1 keeps every unimodal, bimodal, ... interaction. A missing modality contributes
[0, ..., 0, 1]: all interaction terms that involve it vanish and the others stay, so it is
excluded rather than imputed.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from ..errors import ConfigError
from .base import FUSIONS, Fusion, FusionOutput
from ..options import PosInt


@FUSIONS.register("tensor")
class TensorFusion(Fusion):
    """TFN: outer product of all modalities' [h, 1] vectors (size ∏(d+1)), then a linear layer."""

    def __init__(
        self, in_dims: dict[str, int], out_dim: int, dropout: float = 0.0,
        factor_dim: Optional[PosInt] = None, max_size: PosInt = 2**14,
    ) -> None:
        super().__init__(in_dims, out_dim, dropout)
        m = len(in_dims)
        if factor_dim is None:
            factor_dim = max(1, min(16, int(math.floor(max_size ** (1 / m))) - 1))
        size = (factor_dim + 1) ** m
        if size > max_size:
            raise ConfigError(
                f"model.fusion: tensor fusion of {m} modalities with factor_dim {factor_dim} has an outer product of "
                f"{size:,} features (> max_size {max_size:,}); lower factor_dim or use 'low_rank' fusion instead"
            )
        self.size = size
        self.reduce = nn.ModuleDict({k: nn.Linear(d, factor_dim) for k, d in in_dims.items()})
        self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(size, out_dim), nn.GELU())

    def forward(self, embeddings: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> FusionOutput:
        product: Optional[torch.Tensor] = None
        for m in self.modalities:
            h = self.reduce[m](embeddings[m]) * masks[m][:, None]
            z = torch.cat([h, torch.ones_like(h[:, :1])], dim=1)
            product = z if product is None else torch.einsum("bi,bj->bij", product, z).flatten(1)
        return FusionOutput(self.out(product))
