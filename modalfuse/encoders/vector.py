"""Vector encoder: an MLP over precomputed, standardised features."""
from __future__ import annotations

import torch

from .base import ENCODERS, Encoder, EncoderInfo, mlp
from ..options import Rate, Width


@ENCODERS.register("vector_mlp")
class VectorMLP(Encoder):
    """MLP (GELU, dropout) over a fixed-length feature vector."""

    kinds = ("vector",)
    needs = ('input_dim',)

    def __init__(self, dim: int, info: EncoderInfo, hidden: tuple[Width, ...] = (256,), dropout: Rate = 0.2) -> None:
        super().__init__(dim, info)
        self.net = mlp([info["input_dim"], *hidden, dim], dropout)
        self.info_dim = info["input_dim"]  # the input width (a translation target predicts it)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
