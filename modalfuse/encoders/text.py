"""Text encoders over token ids from the vocabulary fitted on the training texts."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .base import ENCODERS, Encoder


@ENCODERS.register("text_cnn")
class TextCNN(Encoder):
    """Word embeddings, parallel 1D convolutions (Kim 2014), max-pooled over real tokens."""

    def __init__(
        self, dim: int, info: dict[str, Any], embed_dim: int = 64, filters: int = 64,
        kernel_sizes: tuple[int, ...] = (2, 3, 4), dropout: float = 0.2,
    ) -> None:
        super().__init__(dim, info)
        self.pad_id = info["pad_id"]
        self.embed = nn.Embedding(info["vocab_size"], embed_dim, padding_idx=self.pad_id)
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, filters, k, padding=k // 2) for k in kernel_sizes)
        self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(filters * len(kernel_sizes), dim))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        valid = (ids != self.pad_id)
        h = self.embed(ids).transpose(1, 2)
        pooled = []
        for conv in self.convs:
            c = torch.relu(conv(h))[..., : ids.shape[1]]
            c = c.masked_fill(~valid[:, None, :], float("-inf")).amax(dim=2)
            pooled.append(torch.where(torch.isfinite(c), c, torch.zeros_like(c)))
        return self.out(torch.cat(pooled, dim=1))


@ENCODERS.register("text_transformer")
class TextTransformer(Encoder):
    """A small transformer encoder with learned positions, mean-pooled over real tokens."""

    def __init__(
        self, dim: int, info: dict[str, Any], embed_dim: int = 64, layers: int = 2, heads: int = 4,
        max_tokens: int = 512, dropout: float = 0.1,
    ) -> None:
        super().__init__(dim, info)
        self.pad_id = info["pad_id"]
        self.embed = nn.Embedding(info["vocab_size"], embed_dim, padding_idx=self.pad_id)
        self.pos = nn.Parameter(torch.randn(max_tokens, embed_dim) / math.sqrt(embed_dim))
        layer = nn.TransformerEncoderLayer(embed_dim, heads, 4 * embed_dim, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(embed_dim, dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        valid = ids != self.pad_id
        valid = valid | (~valid.any(dim=1, keepdim=True) & (torch.arange(ids.shape[1], device=ids.device) == 0))
        h = self.encoder(self.embed(ids) + self.pos[: ids.shape[1]], src_key_padding_mask=~valid)
        pooled = (h * valid[..., None]).sum(1) / valid.sum(1, keepdim=True)
        return self.out(pooled)
