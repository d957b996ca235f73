"""OGM-GE (Peng et al., CVPR 2022): on-the-fly gradient modulation against modality collapse.

Each training step scores every modality by its share of the correct-class probability: the
mean probability the model gives the true label from that modality alone (the others masked out,
as if missing). The discrepancy ratio of modality m is ρ_m = s_m / mean of the other modalities'
scores (for two modalities exactly the paper's s_a / s_v). A dominant modality (ρ_m > 1) gets the
coefficient k_m = 1 − tanh(α·(ρ_m − 1)) on its encoder's gradients, plus Gaussian noise with the
standard deviation of each unscaled gradient tensor (generalisation enhancement, "GE"); the
others are left untouched.
"""
from __future__ import annotations

import math
from typing import Iterable, Optional

import torch
from torch import nn


def modulation_coefficients(scores: dict[str, float], alpha: float) -> dict[str, float]:
    """k_m = 1 − tanh(α·(ρ_m − 1)) where ρ_m = s_m / mean(s_j, j ≠ m) > 1, else 1."""
    coeffs = {}
    for m, s in scores.items():
        others = [v for j, v in scores.items() if j != m]
        mean_other = sum(others) / len(others) if others else 0.0
        rho = s / mean_other if mean_other > 0 else 1.0
        coeffs[m] = 1.0 - math.tanh(alpha * (rho - 1.0)) if rho > 1.0 else 1.0
    return coeffs


@torch.no_grad()
def correct_class_scores(
    unimodal_proba: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
    target: torch.Tensor,
    other_target: Optional[torch.Tensor] = None,
    lam: float = 1.0,
) -> dict[str, float]:
    """Mean probability of the true class per modality, over the rows where that modality is present.

    With mixup, the true class is the mixed label: λ·p(y) + (1 − λ)·p(y_partner).
    """
    scores = {}
    for m, proba in unimodal_proba.items():
        rows = masks[m]
        if not rows.any():
            continue
        p = proba[rows]
        hit = p.gather(1, target[rows].long()[:, None])[:, 0]
        if other_target is not None and lam < 1.0:
            hit = lam * hit + (1.0 - lam) * p.gather(1, other_target[rows].long()[:, None])[:, 0]
        scores[m] = float(hit.mean())
    return scores


@torch.no_grad()
def modulate_gradients(params: Iterable[nn.Parameter], coefficient: float, noise: bool) -> None:
    """grad ← k·grad (+ N(0, std(grad)) per tensor when ``noise``), in place; k = 1 leaves the gradients alone."""
    if coefficient >= 1.0:
        return
    for p in params:
        if p.grad is None:
            continue
        std = float(p.grad.std()) if noise and p.grad.numel() > 1 else 0.0
        p.grad.mul_(coefficient)
        if std > 0:
            p.grad.add_(torch.randn_like(p.grad) * std)


@torch.no_grad()
def unimodal_probabilities(
    fusion: nn.Module, head: nn.Module, embeddings: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Class probabilities [B, C] from each modality alone: fusion and head with every other modality masked out."""
    out = {}
    for m in embeddings:
        only_masks = {k: v if k == m else torch.zeros_like(v) for k, v in masks.items()}
        only = {k: v if k == m else torch.zeros_like(v) for k, v in embeddings.items()}
        out[m] = head.proba(head(fusion(only, only_masks).fused))
    return out
