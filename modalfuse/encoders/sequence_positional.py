"""GraphDTA's protein branch: every residue position is a channel, convolved across the embedding axis."""
from __future__ import annotations

import torch
from torch import nn

from .base import ENCODERS, Encoder, EncoderInfo
from ..options import PosInt, Width


@ENCODERS.register("sequence_positional_cnn")
class SequencePositionalCNN(Encoder):
    """Embedding → Conv1d with the ``max_len`` positions as input channels → flatten → linear (GraphDTA layout).

    Unlike ``sequence_cnn`` it keeps where each residue sits instead of max-pooling motifs away; it is
    the architecture the GraphDTA results were obtained with, and costs about a third of ``sequence_cnn``.
    """

    kinds = ("sequence",)
    needs = ('vocab_size', 'pad_id', 'max_len')

    def __init__(self, dim: int, info: EncoderInfo, embed_dim: Width = 128, filters: Width = 32, kernel_size: PosInt = 8) -> None:
        super().__init__(dim, info)
        self.embed = nn.Embedding(info["vocab_size"], embed_dim, padding_idx=info["pad_id"])
        self.conv = nn.Conv1d(info["max_len"], filters, kernel_size)
        self.out = nn.Linear(filters * (embed_dim - kernel_size + 1), dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.conv(self.embed(ids)).flatten(1))
