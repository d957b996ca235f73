"""Low-rank Multimodal Fusion (Liu et al. 2018): the TFN product computed through rank-r factors.

Parameters grow as r·Σ(d_m+1)·d_out instead of ∏(d_m+1)·d_out. Every factor is an
``nn.Parameter`` in a ``ParameterDict`` so it trains (kept in a plain list, it would not).
"""
from __future__ import annotations

import torch
from torch import nn

from .base import FUSIONS, Fusion, FusionOutput
from ..options import PosInt


@FUSIONS.register("low_rank")
class LowRankFusion(Fusion):
    """LMF: per-modality rank-r factors, elementwise product across modalities, weighted sum over rank."""

    def __init__(self, in_dims: dict[str, int], out_dim: int, dropout: float = 0.0, rank: PosInt = 4) -> None:
        super().__init__(in_dims, out_dim, dropout)
        self.factors = nn.ParameterDict(
            {m: nn.Parameter(torch.randn(rank, d + 1, out_dim) * (1.0 / (d + 1)) ** 0.5) for m, d in in_dims.items()}
        )
        self.rank_weights = nn.Parameter(torch.full((1, rank), 1.0 / rank))
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.post = nn.Sequential(nn.GELU(), nn.Dropout(dropout))

    def forward(self, embeddings: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> FusionOutput:
        fused = None
        for m in self.modalities:
            h = embeddings[m] * masks[m][:, None]
            z = torch.cat([h, torch.ones_like(h[:, :1])], dim=1)
            part = torch.einsum("bi,rio->rbo", z, self.factors[m])
            fused = part if fused is None else fused * part
        out = torch.einsum("xr,rbo->bo", self.rank_weights, fused) + self.bias
        return FusionOutput(self.post(out))
