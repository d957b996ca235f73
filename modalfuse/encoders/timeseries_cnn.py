"""A 1D CNN for multichannel signals: residual dilated convolutions over time, global average pooling."""
from __future__ import annotations

import torch
from torch import nn

from ..options import PosInt, Rate, Widths
from .base import ENCODERS, Encoder, EncoderInfo


class _Block(nn.Module):
    """Conv → norm → GELU twice, with a residual path; ``dilation`` widens the receptive field cheaply."""

    def __init__(self, cin: int, cout: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        pad = dilation * (kernel_size - 1) // 2
        self.body = nn.Sequential(
            nn.Conv1d(cin, cout, kernel_size, padding=pad, dilation=dilation), nn.GroupNorm(1, cout), nn.GELU(), nn.Dropout(dropout),
            nn.Conv1d(cout, cout, kernel_size, padding=pad, dilation=dilation), nn.GroupNorm(1, cout),
        )
        self.skip = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


@ENCODERS.register("timeseries_cnn")
class TimeseriesCNN(Encoder):
    """Residual dilated 1D convolutions over [channels, steps], average-pooled over time."""

    kinds = ("timeseries",)
    needs = ('channels',)

    def __init__(self, dim: int, info: EncoderInfo, widths: Widths = (32, 64, 64), kernel_size: PosInt = 7, dropout: Rate = 0.1) -> None:
        super().__init__(dim, info)
        blocks, cin = [], info["channels"]
        for i, w in enumerate(widths):
            blocks.append(_Block(cin, w, kernel_size | 1, 2**i, dropout))
            cin = w
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Linear(cin, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(x).mean(dim=2))

    def tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One token per time step: [n, steps, dim], all valid."""
        h = self.out(self.blocks(x).transpose(1, 2))
        return h, torch.ones(h.shape[:2], dtype=torch.bool, device=h.device)
