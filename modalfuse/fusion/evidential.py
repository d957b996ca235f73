"""Evidential fusion (Trusted Multi-View Classification, Han et al. 2021).

Each modality forms a Dirichlet opinion (evidence = softplus(logits), α = e + 1, belief
b = e/S, uncertainty u = K/S); opinions are combined with the reduced Dempster–Shafer rule.
A missing modality gives the vacuous opinion (b = 0, u = 1), which the rule leaves out exactly.
"""
from __future__ import annotations

import torch
from torch import nn

from ..encoders.base import mlp
from ..heads.evidential import evidence_to_alpha
from .base import FUSIONS, Fusion, FusionOutput
from ..options import Width


def opinion(alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Belief masses b = (α − 1)/S [B, K] and uncertainty u = K/S [B]."""
    strength = alpha.sum(dim=1, keepdim=True)
    return (alpha - 1) / strength, alpha.shape[1] / strength[:, 0]


def combine_two(alpha1: torch.Tensor, alpha2: torch.Tensor) -> torch.Tensor:
    """Reduced Dempster–Shafer combination of two Dirichlet opinions; returns the fused α."""
    b1, u1 = opinion(alpha1)
    b2, u2 = opinion(alpha2)
    conflict = b1.sum(1) * b2.sum(1) - (b1 * b2).sum(1)
    scale = 1.0 / (1.0 - conflict)
    b = (b1 * b2 + b1 * u2[:, None] + b2 * u1[:, None]) * scale[:, None]
    u = u1 * u2 * scale
    strength = alpha1.shape[1] / u
    return b * strength[:, None] + 1


def combine(alphas: list[torch.Tensor]) -> torch.Tensor:
    fused = alphas[0]
    for alpha in alphas[1:]:
        fused = combine_two(fused, alpha)
    return fused


@FUSIONS.register("evidential")
class EvidentialFusion(Fusion):
    """Trusted multi-view: per-modality Dirichlet opinions combined by Dempster–Shafer; yields uncertainty."""

    predicts = True
    head_kinds = {"classification": "evidential"}
    tasks = ("classification",)
    default_aux_weight = 1.0

    def __init__(self, in_dims: dict[str, int], out_dim: int, dropout: float = 0.0, hidden: Width = 64) -> None:
        super().__init__(in_dims, out_dim, dropout)
        self.heads = nn.ModuleDict({m: mlp([d, hidden, out_dim], dropout) for m, d in in_dims.items()})

    def forward(self, embeddings: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> FusionOutput:
        alphas = {}
        for m in self.modalities:
            alpha = evidence_to_alpha(self.heads[m](embeddings[m]))
            alphas[m] = torch.where(masks[m][:, None], alpha, torch.ones_like(alpha))
        fused = combine([alphas[m] for m in self.modalities])
        certainty = torch.stack([1 - opinion(alphas[m])[1] for m in self.modalities], dim=1)
        weights = certainty / certainty.sum(dim=1, keepdim=True).clamp(min=1e-12)
        return FusionOutput(fused, weights=weights, aux=alphas)
