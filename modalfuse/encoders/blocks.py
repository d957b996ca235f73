"""Building blocks shared by the image and audio encoders."""
from __future__ import annotations

import torch
from torch import nn


def _norm(channels: int) -> nn.GroupNorm:
    """GroupNorm: statistics per sample, so one sample never changes another's embedding."""
    return nn.GroupNorm(min(8, channels), channels)


class ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), _norm(cout), nn.GELU(),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), _norm(cout),
        )
        self.skip = nn.Identity() if cin == cout and stride == 1 else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), _norm(cout))
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


class ResidualCNN(nn.Module):
    """A small ResNet: stem, one residual block per width (each halving resolution), global pooling."""

    def __init__(self, in_channels: int, widths: tuple[int, ...], dim: int, dropout: float) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), _norm(widths[0]), nn.GELU())
        blocks, cin = [], widths[0]
        for i, w in enumerate(widths):
            blocks.append(ResidualBlock(cin, w, stride=1 if i == 0 else 2))
            cin = w
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, dim))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map [n, c, h, w] (for fusions that work between feature maps)."""
        return self.blocks(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x).mean(dim=(2, 3)))

    def tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One token per position of the last feature map, through the same output layer."""
        grid = self.features(x).flatten(2).transpose(1, 2)
        return self.out[-1](grid), torch.ones(grid.shape[:2], dtype=torch.bool, device=grid.device)
