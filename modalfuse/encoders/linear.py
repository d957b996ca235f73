"""Linear encoder: a light projection of a feature vector, for early (feature-level) fusion."""
from __future__ import annotations

import torch
from torch import nn

from .base import ENCODERS, Encoder, EncoderInfo


@ENCODERS.register("linear")
class LinearEncoder(Encoder):
    """One linear projection of a vector modality (pair with `early` fusion for feature-level fusion)."""

    kinds = ("vector",)
    needs = ('input_dim',)

    def __init__(self, dim: int, info: EncoderInfo) -> None:
        super().__init__(dim, info)
        self.proj = nn.Linear(info["input_dim"], dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)
