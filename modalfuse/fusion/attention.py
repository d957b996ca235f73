"""Attention fusion: a transformer over modality tokens plus a learned fusion token."""
from __future__ import annotations

import torch
from torch import nn

from .base import FUSIONS, Fusion, FusionOutput
from ..options import PosInt


@FUSIONS.register("attention")
class AttentionFusion(Fusion):
    """Transformer over one token per modality and a fusion token; missing modalities are key-masked."""

    def __init__(
        self, in_dims: dict[str, int], out_dim: int, dropout: float = 0.0, heads: PosInt = 4, layers: PosInt = 1,
    ) -> None:
        super().__init__(in_dims, out_dim, dropout)
        self.proj = nn.ModuleDict({m: nn.Linear(d, out_dim) for m, d in in_dims.items()})
        self.modality_embed = nn.Parameter(torch.randn(len(in_dims), out_dim) * 0.02)
        self.fusion_token = nn.Parameter(torch.randn(1, 1, out_dim) * 0.02)
        layer = nn.TransformerEncoderLayer(out_dim, heads, 2 * out_dim, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, embeddings: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> FusionOutput:
        tokens = torch.stack([self.proj[m](embeddings[m]) for m in self.modalities], dim=1) + self.modality_embed
        b = tokens.shape[0]
        tokens = torch.cat([self.fusion_token.expand(b, -1, -1), tokens], dim=1)
        presence = self.stack_masks(masks) > 0
        padding = torch.cat([torch.zeros(b, 1, dtype=torch.bool, device=presence.device), ~presence], dim=1)
        out = self.encoder(tokens, src_key_padding_mask=padding)
        return FusionOutput(self.norm(out[:, 0]))
