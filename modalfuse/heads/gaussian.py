"""Regression with aleatoric uncertainty: a mean and a log-variance, trained with the Gaussian NLL."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import HEADS, Head, mean
from typing import Annotated, Optional

from pydantic import Field


@HEADS.register("gaussian")
class GaussianHead(Head):
    """Predicts mean and log-variance per sample; the loss is the Gaussian negative log-likelihood."""

    task = "regression"
    outputs = 2

    def __init__(self, in_dim: int | None, hidden: int, n_outputs: int, dropout: float, beta: Annotated[float, Field(ge=0, le=1)] = 0.0) -> None:
        super().__init__(in_dim, hidden, n_outputs, dropout)
        self.beta = beta

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Gaussian NLL; with ``beta`` > 0 each sample's term is weighted by its (detached) variance^beta
        (β-NLL, Seitzer et al. 2022), so hard samples are not written off as noise and the mean keeps learning."""
        variance = self.variance(out)
        nll = F.gaussian_nll_loss(out[:, 0], target.float(), variance, full=True, reduction="none")
        if self.beta:
            nll = nll * variance.detach() ** self.beta
        return nll.mean()

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        return out[:, 0]

    def average(self, outputs: list[torch.Tensor], weights: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Moment-matched (weighted) mixture: mean of means; mean variance plus variance of the means."""
        if len(outputs) == 1:
            return outputs[0]
        stacked = torch.stack(outputs)
        means, variances = stacked[..., 0], stacked[..., 1].clamp(-12, 12).exp()
        if weights is None:
            var, centre = variances.mean(dim=0) + means.var(dim=0, unbiased=False), means.mean(dim=0)
        else:
            centre = mean(means, weights)
            var = mean(variances, weights) + mean((means - centre) ** 2, weights)
        return torch.stack([centre, var.log()], dim=1)

    @staticmethod
    def variance(out: torch.Tensor) -> torch.Tensor:
        return out[:, 1].clamp(-12, 12).exp()

    def uncertainty(self, out: torch.Tensor) -> torch.Tensor:
        """The predicted (aleatoric) variance."""
        return self.variance(out)
