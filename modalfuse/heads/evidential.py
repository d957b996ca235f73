"""Evidential classification (Sensoy et al. 2018): outputs are Dirichlet parameters α = evidence + 1.

Loss: the digamma form of the expected cross-entropy plus a KL term towards the uniform
Dirichlet on the misleading evidence, annealed in over ``anneal_epochs``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import HEADS, Head
from ..options import NonNegInt


def dirichlet_loss(alpha: torch.Tensor, target: torch.Tensor, kl_weight: float) -> torch.Tensor:
    """Σ_k y_k (ψ(S) − ψ(α_k)) + λ · KL(Dir(α̃) ‖ Dir(1)), α̃ = y + (1 − y) α; mean over the batch."""
    k = alpha.shape[1]
    y = F.one_hot(target.long(), k).to(alpha.dtype)
    strength = alpha.sum(dim=1, keepdim=True)
    ce = (y * (torch.digamma(strength) - torch.digamma(alpha))).sum(dim=1)
    if kl_weight <= 0:
        return ce.mean()
    tilde = y + (1 - y) * alpha
    s_tilde = tilde.sum(dim=1)
    kl = (
        torch.lgamma(s_tilde) - torch.lgamma(torch.tensor(float(k), dtype=alpha.dtype, device=alpha.device))
        - torch.lgamma(tilde).sum(dim=1)
        + ((tilde - 1) * (torch.digamma(tilde) - torch.digamma(s_tilde)[:, None])).sum(dim=1)
    )
    return (ce + kl_weight * kl).mean()


def evidence_to_alpha(logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(logits) + 1.0


@HEADS.register("evidential")
class EvidentialHead(Head):
    """Dirichlet output: the network's output is α; probability α/S, uncertainty u = K/S."""

    task = "classification"
    loss_varies = True

    def __init__(self, in_dim: int | None, hidden: int, n_outputs: int, dropout: float, anneal_epochs: NonNegInt = 10) -> None:
        super().__init__(in_dim, hidden, n_outputs, dropout)
        self.anneal_epochs = anneal_epochs
        self.epoch = 0
        self.from_logits = in_dim is not None

    def forward(self, fused: torch.Tensor) -> torch.Tensor:
        out = self.net(fused)
        return evidence_to_alpha(out) if self.from_logits else out

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weight = 0.0 if self.comparable else min(1.0, self.epoch / max(1, self.anneal_epochs))
        return dirichlet_loss(out, target, weight)

    def proba(self, out: torch.Tensor) -> torch.Tensor:
        return out / out.sum(dim=1, keepdim=True)

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        return out.argmax(dim=1)

    def uncertainty(self, out: torch.Tensor) -> torch.Tensor:
        """Dirichlet uncertainty mass u = K / S ∈ (0, 1]."""
        return out.shape[1] / out.sum(dim=1)
