"""Max-margin classification head: the Crammer–Singer multiclass hinge loss plus an L2 penalty on the head.

Loss per sample: max(0, 1 + max_{j≠y} s_j − s_y) over the class scores s; the batch mean plus
``l2``/2 · ‖W‖² over the head's weight matrices (not biases). On a linear head over fixed features this is
the Crammer–Singer linear SVM with C = 1 / (l2 · n_train): unlike cross-entropy, the optimum depends only on
the samples near the boundary. Scores are not probabilities; ``proba`` is their softmax, uncalibrated until
``MultimodalModel.calibrate`` fits a temperature on held-out rows.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import HEADS
from .classification import MulticlassHead
from typing import Annotated

from pydantic import Field


def multiclass_hinge(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Crammer–Singer hinge per sample [B]: max(0, 1 + max_{j≠y} s_j − s_y)."""
    target = target.long()[:, None]
    margins = (scores - scores.gather(1, target) + 1.0).scatter(1, target, 0.0)
    return margins.amax(dim=1).clamp(min=0.0)


@HEADS.register("margin")
class MarginHead(MulticlassHead):
    """Class scores trained with the multiclass hinge loss (an SVM head); ``l2`` weighs the weight penalty."""

    def __init__(self, in_dim: int | None, hidden: int, n_outputs: int, dropout: float, l2: Annotated[float, Field(ge=0)] = 0.0) -> None:
        super().__init__(in_dim, hidden, n_outputs, dropout)
        self.l2 = l2

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = multiclass_hinge(out, target).mean()
        if self.l2 > 0:
            loss = loss + 0.5 * self.l2 * sum((m.weight ** 2).sum() for m in self.net.modules() if isinstance(m, nn.Linear))
        return loss
