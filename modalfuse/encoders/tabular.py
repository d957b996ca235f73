"""Tabular encoder: standardised numbers (+ missing indicators) and categorical embeddings into an MLP."""
from __future__ import annotations

import torch
from torch import nn

from .base import ENCODERS, Encoder, EncoderInfo, mlp
from ..options import Rate, Width


@ENCODERS.register("tabular_mlp")
class TabularMLP(Encoder):
    """Numeric features and one embedding per categorical column, concatenated into an MLP."""

    kinds = ("tabular",)
    needs = ('n_numeric', 'cardinalities')

    def __init__(self, dim: int, info: EncoderInfo, hidden: Width = 128, dropout: Rate = 0.1) -> None:
        super().__init__(dim, info)
        self.n_numeric = info["n_numeric"]
        self.embeds = nn.ModuleList(nn.Embedding(card, min(16, (card + 1) // 2 + 1)) for card in info["cardinalities"])
        width = 2 * self.n_numeric + sum(e.embedding_dim for e in self.embeds)
        self.net = mlp([width, hidden, dim], dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        numeric = x[:, : 2 * self.n_numeric]
        cats = x[:, 2 * self.n_numeric :].long()
        parts = [numeric] + [emb(cats[:, j]) for j, emb in enumerate(self.embeds)]
        return self.net(torch.cat(parts, dim=1))
