"""Counts encoder: an MLP over a cell's transformed counts (log1p / TF-IDF / LSI / binary), log1p first for raw counts."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import ENCODERS, Encoder, mlp
from ..options import Rate, Width


@ENCODERS.register("counts_mlp")
class CountsMLP(Encoder):
    """LayerNorm then MLP (GELU, dropout); raw counts are log1p-compressed first so deep cells do not dominate."""

    kinds = ("counts",)

    def __init__(self, dim: int, info: dict[str, Any], hidden: tuple[Width, ...] = (256,), dropout: Rate = 0.2) -> None:
        super().__init__(dim, info)
        self.raw = info.get("transform") == "raw"
        self.info_dim = info["input_dim"]  # the input width (a translation target predicts it)
        self.norm = nn.LayerNorm(info["input_dim"])
        self.net = mlp([info["input_dim"], *hidden, dim], dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.norm(torch.log1p(x) if self.raw else x))
