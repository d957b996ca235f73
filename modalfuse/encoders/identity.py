"""Identity encoder: the preprocessed features themselves, for linear models on raw (standardised) features."""
from __future__ import annotations

import torch

from ..errors import ConfigError
from .base import ENCODERS, Encoder, EncoderInfo


@ENCODERS.register("identity")
class IdentityEncoder(Encoder):
    """No parameters: passes a vector modality through, or a timeseries modality's standardised channels × steps
    flattened; its width is the input's (the configured dim is ignored)."""

    kinds = ("vector", "timeseries")

    def __init__(self, dim: int, info: EncoderInfo) -> None:
        if "input_dim" in info:
            width = int(info["input_dim"])
        elif "channels" in info and "length" in info:
            width = int(info["channels"]) * int(info["length"])
        else:
            raise ConfigError(f"encoder 'identity' (for vector or timeseries modalities) needs input_dim, or channels and length, "
                              f"from its modality, which a {info.kind or 'modality of this'} kind does not provide")
        super().__init__(width, info)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)
