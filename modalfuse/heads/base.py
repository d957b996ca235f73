"""Task heads: an MLP to the task's outputs plus the loss, predictions and probabilities."""
from __future__ import annotations

import torch
from torch import nn

from typing import ClassVar, Optional

from ..encoders.base import mlp
from ..registry import Registry


class Head(nn.Module):
    """``in_dim=None`` means the fusion already predicts (late fusion): no projection.

    Subclasses set ``task`` and register by name in ``HEADS``; their extra constructor keywords are
    their typed options (``model.head_options``).
    """

    task: ClassVar[str]
    #: True for a head whose loss changes with the epoch (an annealed penalty): while ``comparable`` is set, its
    #: loss leaves that penalty out, so validation losses of different epochs can be compared (best-epoch selection)
    loss_varies: ClassVar[bool] = False
    comparable: bool = False
    #: outputs per sample whatever the task's count (binary and regression: 1, gaussian: 2); None: ``n_outputs``
    outputs: ClassVar[Optional[int]] = None

    def __init__(self, in_dim: int | None, hidden: int, n_outputs: int, dropout: float) -> None:
        super().__init__()
        self.out_dim = out_dim = self.outputs or n_outputs
        if in_dim is None:
            self.net: nn.Module = nn.Identity()
        else:
            self.net = mlp([in_dim, hidden, out_dim] if hidden else [in_dim, out_dim], dropout)

    def forward(self, fused: torch.Tensor) -> torch.Tensor:
        return self.net(fused)

    def start_at(self, value: float) -> None:
        """Set the first output's bias to ``value`` (for regression, the training targets' mean), so
        training starts centred instead of spending its first steps moving the bias (no-op without layers)."""
        last = self.net[-1] if isinstance(self.net, nn.Sequential) else None
        if isinstance(last, nn.Linear):
            with torch.no_grad():
                last.bias[0] = value

    def average(self, outputs: list[torch.Tensor], weights: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Combine the outputs of ensemble members or dropout passes (default: their mean; ``weights``, one per
        output and summing to 1, weigh it)."""
        return outputs[0] if len(outputs) == 1 else mean(torch.stack(outputs), weights)


def mean(stacked: torch.Tensor, weights: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The mean over the first dimension, weighted by ``weights`` (summing to 1) where given."""
    if weights is None:
        return stacked.mean(dim=0)
    return (weights.to(stacked.dtype).reshape(-1, *[1] * (stacked.dim() - 1)) * stacked).sum(dim=0)


HEADS: Registry[Head] = Registry("head", fixed=("in_dim", "hidden", "n_outputs", "dropout"))
