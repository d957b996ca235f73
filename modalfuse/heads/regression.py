"""Regression head: one real output, mean-squared-error loss."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import HEADS, Head


@HEADS.register("regression")
class RegressionHead(Head):
    """A single real-valued output trained with MSE."""

    task = "regression"
    outputs = 1

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(out[:, 0], target.float())

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        return out[:, 0]
