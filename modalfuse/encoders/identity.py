"""Identity encoder: the preprocessed feature vector itself, for linear models on raw (standardised) features."""
from __future__ import annotations

import torch

from .base import ENCODERS, Encoder, EncoderInfo


@ENCODERS.register("identity")
class IdentityEncoder(Encoder):
    """No parameters: passes a vector modality through; its width is the input's (the configured dim is ignored)."""

    kinds = ("vector",)
    needs = ('input_dim',)

    def __init__(self, dim: int, info: EncoderInfo) -> None:
        super().__init__(int(info["input_dim"]), info)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
