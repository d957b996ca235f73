"""Inverse-variance fusion: each modality's prediction weighted by 1/σ², per sample.

Every modality has a head that predicts its output and a log-variance. Weights are
w_m = (1/σ_m²) / Σ_present (1/σ²); regression also returns the fused variance 1/Σ(1/σ²).
Regression branches learn σ² as aleatoric variance (Gaussian NLL); classification branches
learn it as the scale of Gaussian noise on their logits (Kendall & Gal 2017, sampled loss).
At predict time, MC dropout adds each branch's epistemic variance before weighting
(:meth:`combine`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..encoders.base import mlp
from .base import FUSIONS, Fusion, FusionOutput
from ..options import PosInt, Width


@FUSIONS.register("inverse_variance")
class InverseVarianceFusion(Fusion):
    """Per-modality predictions with learned variances, combined with weights ∝ 1/σ² (precision-weighted)."""

    predicts = True
    needs_task = True
    head_kinds = {"regression": "gaussian"}
    default_aux_weight = 1.0

    def __init__(
        self, in_dims: dict[str, int], out_dim: int, dropout: float = 0.0, task: str = "classification",
        hidden: Width = 64, noise_samples: PosInt = 10,
    ) -> None:
        super().__init__(in_dims, out_dim, dropout)
        self.regression = task == "regression"
        self.k = 1 if self.regression else out_dim
        self.noise_samples = noise_samples
        self.branches = nn.ModuleDict({m: mlp([d, hidden, self.k + 1], dropout) for m, d in in_dims.items()})

    def forward(self, embeddings: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> FusionOutput:
        outs = {m: self.branches[m](embeddings[m]) for m in self.modalities}
        preds = torch.stack([outs[m][:, : self.k] for m in self.modalities], dim=1)
        variances = torch.stack([outs[m][:, self.k].clamp(-10, 10).exp() for m in self.modalities], dim=1)
        fused, fused_var, weights = self.combine(preds, variances, self.stack_masks(masks))
        output = torch.cat([fused, fused_var.log()[:, None]], dim=1) if self.regression else fused
        return FusionOutput(output, weights=weights, aux=outs)

    def mc_combine(self, samples: list[dict[str, torch.Tensor]], masks: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Fuse T MC-dropout passes: each branch's variance = mean aleatoric + variance of its predictions."""
        preds = torch.stack([torch.stack([s[m][:, : self.k] for m in self.modalities], dim=1) for s in samples])
        aleatoric = torch.stack([torch.stack([s[m][:, self.k].clamp(-10, 10).exp() for m in self.modalities], dim=1) for s in samples])
        epistemic = preds.var(dim=0, unbiased=len(samples) > 1).mean(dim=2)
        fused, fused_var, weights = self.combine(preds.mean(dim=0), aleatoric.mean(dim=0) + epistemic, self.stack_masks(masks))
        output = torch.cat([fused, fused_var.log()[:, None]], dim=1) if self.regression else fused
        return output, weights

    @staticmethod
    def combine(preds: torch.Tensor, variances: torch.Tensor, presence: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """preds [B, M, K], variances [B, M], presence [B, M] → fused [B, K], fused variance [B], weights [B, M]."""
        precision = presence / variances
        total = precision.sum(dim=1, keepdim=True)
        weights = precision / total.clamp(min=1e-12)
        fused = torch.einsum("bm,bmk->bk", weights, preds)
        return fused, 1.0 / total[:, 0].clamp(min=1e-12), weights

    def branch_loss(self, head, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Regression: Gaussian NLL; classification: NLL of the softmax averaged over noisy logits."""
        if self.regression:
            return head.loss(out, target)
        logits, log_var = out[:, : self.k], out[:, self.k].clamp(-10, 10)
        noise = torch.randn(self.noise_samples, *logits.shape, device=logits.device)
        noisy = logits[None] + (0.5 * log_var).exp()[None, :, None] * noise
        if self.k == 1:  # binary: one logit, Bernoulli likelihood
            p = torch.sigmoid(noisy[..., 0]).mean(dim=0).clamp(1e-6, 1 - 1e-6)
            return F.binary_cross_entropy(p, target.float())
        log_p = torch.logsumexp(F.log_softmax(noisy, dim=2), dim=0) - torch.log(torch.tensor(float(self.noise_samples)))
        return F.nll_loss(log_p, target.long())
