"""A small transformer for multichannel signals: non-overlapping patches of steps as tokens (PatchTST-style)."""
from __future__ import annotations

import math


import torch
from torch import nn

from ..options import PosInt, Rate, Width
from .base import ENCODERS, Encoder, EncoderInfo


@ENCODERS.register("timeseries_transformer")
class TimeseriesTransformer(Encoder):
    """Patches of ``patch`` steps (all channels) embedded linearly, learned positions, transformer layers, mean pooling."""

    kinds = ("timeseries",)
    needs = ('channels', 'length')

    def __init__(
        self, dim: int, info: EncoderInfo, patch: PosInt = 10, embed_dim: Width = 64, layers: PosInt = 2, heads: PosInt = 4,
        dropout: Rate = 0.1,
    ) -> None:
        super().__init__(dim, info)
        self.patch = patch
        n_patches = math.ceil(info["length"] / patch)
        self.embed = nn.Linear(info["channels"] * patch, embed_dim)
        self.pos = nn.Parameter(torch.randn(n_patches, embed_dim) / math.sqrt(embed_dim))
        layer = nn.TransformerEncoderLayer(embed_dim, heads, 4 * embed_dim, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(embed_dim, dim)

    def _hidden(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t = x.shape
        pad = (-t) % self.patch
        if pad:
            x = nn.functional.pad(x, (0, pad))
        patches = x.reshape(n, c, -1, self.patch).permute(0, 2, 1, 3).reshape(n, -1, c * self.patch)
        return self.encoder(self.embed(patches) + self.pos[: patches.shape[1]])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self._hidden(x).mean(dim=1))

    def tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.out(self._hidden(x))
        return h, torch.ones(h.shape[:2], dtype=torch.bool, device=h.device)
