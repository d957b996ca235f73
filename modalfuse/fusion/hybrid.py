"""Hybrid fusion: an intermediate fusion plus per-modality auxiliary heads, predictions combined."""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn

from ..encoders.base import mlp
from .base import FUSIONS, Fusion, FusionOutput
from ..options import Width


@FUSIONS.register("hybrid")
class HybridFusion(Fusion):
    """Intermediate fusion (concat by default) + one auxiliary head per modality, combined by learned weights."""

    predicts = True
    default_aux_weight = 0.5

    def __init__(
        self, in_dims: dict[str, int], out_dim: int, dropout: float = 0.0, inner: str = "concat",
        inner_dim: Width = 128, inner_options: Optional[dict[str, Any]] = None, hidden: Width = 64,
    ) -> None:
        super().__init__(in_dims, out_dim, dropout)
        self.inner = FUSIONS.create(inner, inner_options or {}, "model.fusion.options.inner", in_dims=in_dims, out_dim=inner_dim, dropout=dropout)
        if self.inner.predicts:
            from ..errors import ConfigError

            raise ConfigError(f"model.fusion.options.inner: {inner!r} already predicts; choose an intermediate fusion")
        self.fused_head = mlp([inner_dim, hidden, out_dim], dropout)
        self.heads = nn.ModuleDict({m: mlp([d, hidden, out_dim], dropout) for m, d in in_dims.items()})
        self.mix = nn.Parameter(torch.zeros(len(in_dims) + 1))

    def forward(self, embeddings: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> FusionOutput:
        fused = self.fused_head(self.inner(embeddings, masks).fused)
        preds = {m: self.heads[m](embeddings[m]) for m in self.modalities}
        presence = torch.cat([torch.ones_like(self.stack_masks(masks)[:, :1]), self.stack_masks(masks)], dim=1)
        weights = torch.softmax(self.mix.expand_as(presence).masked_fill(presence == 0, float("-inf")), dim=1)
        stacked = torch.stack([fused, *(preds[m] for m in self.modalities)], dim=1)
        combined = torch.einsum("bk,bko->bo", weights, stacked)
        return FusionOutput(combined, weights=weights[:, 1:], aux=preds)
