"""Text encoders over token ids from the vocabulary fitted on the training texts."""
from __future__ import annotations

import math


import torch
from torch import nn

from .base import ENCODERS, Encoder, EncoderInfo
from ..options import PosInt, Rate, Width, Widths


@ENCODERS.register("text_cnn")
class TextCNN(Encoder):
    """Word embeddings, parallel 1D convolutions (Kim 2014), max-pooled over real tokens."""

    kinds = ("text", "sequence")
    needs = ('vocab_size', 'pad_id')

    def __init__(
        self, dim: int, info: EncoderInfo, embed_dim: Width = 64, filters: Width = 64,
        kernel_sizes: Widths = (2, 3, 4), dropout: Rate = 0.2,
    ) -> None:
        super().__init__(dim, info)
        self.pad_id = info["pad_id"]
        self.embed = nn.Embedding(info["vocab_size"], embed_dim, padding_idx=self.pad_id)
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, filters, k, padding=k // 2) for k in kernel_sizes)
        self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(filters * len(kernel_sizes), dim))

    def _features(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.embed(ids).transpose(1, 2)
        return torch.cat([torch.relu(conv(h))[..., : ids.shape[1]] for conv in self.convs], dim=1), ids != self.pad_id

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        feats, valid = self._features(ids)
        pooled = feats.masked_fill(~valid[:, None, :], float("-inf")).amax(dim=2)
        return self.out(torch.where(torch.isfinite(pooled), pooled, torch.zeros_like(pooled)))

    def tokens(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats, valid = self._features(ids)
        return self.out[-1](feats.transpose(1, 2)), _at_least_one(valid)


@ENCODERS.register("text_transformer")
class TextTransformer(Encoder):
    """A small transformer encoder with learned positions, mean-pooled over real tokens."""

    kinds = ("text", "sequence")
    needs = ('vocab_size', 'pad_id')

    def __init__(
        self, dim: int, info: EncoderInfo, embed_dim: Width = 64, layers: PosInt = 2, heads: PosInt = 4,
        max_tokens: PosInt = 512, dropout: Rate = 0.1,
    ) -> None:
        super().__init__(dim, info)
        self.pad_id = info["pad_id"]
        self.embed = nn.Embedding(info["vocab_size"], embed_dim, padding_idx=self.pad_id)
        self.pos = nn.Parameter(torch.randn(max_tokens, embed_dim) / math.sqrt(embed_dim))
        layer = nn.TransformerEncoderLayer(embed_dim, heads, 4 * embed_dim, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(embed_dim, dim)

    def _hidden(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        valid = _at_least_one(ids != self.pad_id)
        return self.encoder(self.embed(ids) + self.pos[: ids.shape[1]], src_key_padding_mask=~valid), valid

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h, valid = self._hidden(ids)
        return self.out((h * valid[..., None]).sum(1) / valid.sum(1, keepdim=True))

    def tokens(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, valid = self._hidden(ids)
        return self.out(h), valid


def _at_least_one(valid: torch.Tensor) -> torch.Tensor:
    """Mark the first position valid in rows with no real token (an empty text), so pooling is defined."""
    first = torch.arange(valid.shape[1], device=valid.device) == 0
    return valid | (~valid.any(dim=1, keepdim=True) & first)
