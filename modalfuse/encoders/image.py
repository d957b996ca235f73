"""Image encoder: a small residual CNN over normalised pixels."""
from __future__ import annotations

import torch

from .base import ENCODERS, Encoder, EncoderInfo
from .blocks import ResidualCNN
from ..options import Rate, Widths


@ENCODERS.register("image_cnn")
class ImageCNN(Encoder):
    """Small residual CNN (GroupNorm, GELU) with global average pooling, for images."""

    kinds = ("image",)
    needs = ('in_channels',)

    def __init__(self, dim: int, info: EncoderInfo, widths: Widths = (32, 64, 128), dropout: Rate = 0.1) -> None:
        super().__init__(dim, info)
        self.net = ResidualCNN(info["in_channels"], tuple(widths), dim, dropout)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """The CNN's input (fusions that run the CNN stage by stage start here)."""
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net.tokens(x)
