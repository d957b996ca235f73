"""Gated multimodal units (Arevalo et al. 2017), generalised to M modalities."""
from __future__ import annotations

import torch
from torch import nn

from .base import FUSIONS, Fusion, FusionOutput


@FUSIONS.register("gated")
class GatedFusion(Fusion):
    """GMU: tanh features per modality mixed by learned per-feature gates (softmax over present modalities)."""

    def __init__(self, in_dims: dict[str, int], out_dim: int, dropout: float = 0.0) -> None:
        super().__init__(in_dims, out_dim, dropout)
        self.missing = nn.ParameterDict({m: nn.Parameter(torch.zeros(d)) for m, d in in_dims.items()})
        self.features = nn.ModuleDict({m: nn.Linear(d, out_dim) for m, d in in_dims.items()})
        # gates read a shared summary of all modalities, so parameters grow linearly with their number
        self.summary = nn.Sequential(nn.Linear(sum(in_dims.values()), out_dim), nn.Tanh())
        self.gate = nn.ModuleDict({m: nn.Linear(out_dim, out_dim) for m in in_dims})
        self.drop = nn.Dropout(dropout)

    def forward(self, embeddings: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> FusionOutput:
        filled = [torch.where(masks[m][:, None], embeddings[m], self.missing[m].expand_as(embeddings[m])) for m in self.modalities]
        h = torch.stack([torch.tanh(self.features[m](x)) for m, x in zip(self.modalities, filled)], dim=1)
        presence = self.stack_masks(masks)
        summary = self.summary(torch.cat(filled, dim=1))
        logits = torch.stack([self.gate[m](summary) for m in self.modalities], dim=1)
        gates = torch.softmax(logits.masked_fill(presence[..., None] == 0, float("-inf")), dim=1)
        gates = torch.nan_to_num(gates, nan=0.0)
        return FusionOutput(self.drop((gates * h).sum(dim=1)), weights=gates.mean(dim=2))
