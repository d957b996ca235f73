"""Classification heads: binary (one logit, BCE) and multiclass (softmax, cross-entropy)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from typing import Optional

from .base import HEADS, Head, mean


@HEADS.register("binary")
class BinaryHead(Head):
    """One logit; probability of the second class is its sigmoid."""

    task = "classification"
    outputs = 1

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(out[:, 0], target.float())

    def proba(self, out: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(out[:, 0])
        return torch.stack([1 - p, p], dim=1)

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        return (out[:, 0] > 0).long()

    def average(self, outputs: list[torch.Tensor], weights: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The logit of the (weighted) mean probability."""
        if len(outputs) == 1:
            return outputs[0]
        return torch.logit(mean(torch.stack([torch.sigmoid(o) for o in outputs]), weights), eps=1e-7)


@HEADS.register("multiclass")
class MulticlassHead(Head):
    """Softmax over classes, cross-entropy loss."""

    task = "classification"

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out, target.long())

    def proba(self, out: torch.Tensor) -> torch.Tensor:
        return torch.softmax(out, dim=1)

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        return out.argmax(dim=1)

    def average(self, outputs: list[torch.Tensor], weights: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Log of the (weighted) mean probability (softmax of it gives the mean probability back)."""
        if len(outputs) == 1:
            return outputs[0]
        return mean(torch.stack([torch.softmax(o, dim=1) for o in outputs]), weights).clamp(min=1e-12).log()
