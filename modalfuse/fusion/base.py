"""Fusion contract and registry.

A fusion takes {modality: embeddings [B, d_m]} and {modality: presence mask [B]} and returns
the fused representation [B, out_dim]. A missing modality never contributes: its embedding
row holds zeros that fusions must ignore (replace by a learned token, or mask out).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional

import torch
from torch import nn

from ..registry import Registry


@dataclass
class FusionOutput:
    fused: torch.Tensor
    #: per-sample modality weights [B, M] in the fusion's modality order, where it has them
    weights: Optional[torch.Tensor] = None
    #: per-modality predictions in task-output space, for auxiliary losses
    aux: dict[str, torch.Tensor] = field(default_factory=dict)


class Fusion(nn.Module):
    """Base class. ``predicts`` is True when ``fused`` is already in task-output space (late fusion)."""

    predicts: ClassVar[bool] = False
    #: auxiliary-loss weight used when the config leaves ``model.aux_weight`` unset
    default_aux_weight: ClassVar[float] = 0.0
    #: task → head kind this fusion needs ("evidential", "gaussian"); others take the configured head
    head_kinds: ClassVar[dict[str, str]] = {}
    #: whether the constructor takes the task ("classification" / "regression")
    needs_task: ClassVar[bool] = False

    def __init__(self, in_dims: dict[str, int], out_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.modalities = list(in_dims)
        self.in_dims = dict(in_dims)
        self.out_dim = out_dim

    def branch_loss(self, head: nn.Module, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of one modality's auxiliary prediction (rows where the modality is present)."""
        return head.loss(out, target)

    def stack_masks(self, masks: dict[str, torch.Tensor]) -> torch.Tensor:
        """[B, M] float presence in the fusion's modality order."""
        return torch.stack([masks[m] for m in self.modalities], dim=1).float()


FUSIONS: Registry[Fusion] = Registry("fusion")


def masked_mean(values: torch.Tensor, presence: torch.Tensor) -> torch.Tensor:
    """Mean over present modalities: values [B, M, D], presence [B, M] → [B, D]."""
    weights = presence / presence.sum(dim=1, keepdim=True).clamp(min=1.0)
    return torch.einsum("bm,bmd->bd", weights, values)
