"""Late (prediction-level) fusion: one predictor per modality, predictions combined over present modalities."""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ..encoders.base import mlp
from .base import FUSIONS, Fusion, FusionOutput
from ..options import Width


@FUSIONS.register("late")
class LateFusion(Fusion):
    """One head per modality; predictions averaged (or with learned weights) over present modalities."""

    predicts = True
    default_aux_weight = 1.0

    def __init__(
        self, in_dims: dict[str, int], out_dim: int, dropout: float = 0.0, hidden: Width = 64,
        combine: Literal["mean", "learned"] = "mean",
    ) -> None:
        super().__init__(in_dims, out_dim, dropout)
        self.heads = nn.ModuleDict({m: mlp([d, hidden, out_dim], dropout) for m, d in in_dims.items()})
        self.combine = combine
        self.logit_weights = nn.Parameter(torch.zeros(len(in_dims))) if combine == "learned" else None

    def forward(self, embeddings: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> FusionOutput:
        preds = {m: self.heads[m](embeddings[m]) for m in self.modalities}
        presence = self.stack_masks(masks)
        scores = self.logit_weights.expand_as(presence) if self.logit_weights is not None else torch.zeros_like(presence)
        weights = torch.softmax(scores.masked_fill(presence == 0, float("-inf")), dim=1)
        weights = torch.nan_to_num(weights, nan=0.0)
        fused = torch.einsum("bm,bmo->bo", weights, torch.stack([preds[m] for m in self.modalities], dim=1))
        return FusionOutput(fused, weights=weights, aux=preds)
