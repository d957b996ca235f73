"""Sequence encoder: character embeddings and stacked 1D convolutions (DeepDTA-style), max-pooled."""
from __future__ import annotations

import torch
from torch import nn

from .base import ENCODERS, Encoder, EncoderInfo
from ..options import PosInt, Rate, Width, Widths


@ENCODERS.register("sequence_cnn")
class SequenceCNN(Encoder):
    """Character-level 1D CNN for proteins, DNA or SMILES strings, with global max pooling."""

    kinds = ("sequence",)
    needs = ('vocab_size', 'pad_id')

    def __init__(
        self, dim: int, info: EncoderInfo, embed_dim: Width = 128, filters: Widths = (32, 64, 96),
        kernel_size: PosInt = 8, dropout: Rate = 0.1,
    ) -> None:
        super().__init__(dim, info)
        self.embed = nn.Embedding(info["vocab_size"], embed_dim, padding_idx=info["pad_id"])
        layers, cin = [], embed_dim
        for f in filters:
            layers += [nn.Conv1d(cin, f, kernel_size), nn.ReLU()]
            cin = f
        self.convs = nn.Sequential(*layers)
        self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(cin, dim))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.convs(self.embed(ids).transpose(1, 2)).amax(dim=2))

    def tokens(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.convs(self.embed(ids).transpose(1, 2)).transpose(1, 2)
        return self.out[-1](feats), torch.ones(feats.shape[:2], dtype=torch.bool, device=feats.device)
