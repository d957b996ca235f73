"""Cross-modal attention (MulT-style, Tsai et al. 2019) over the token sequences encoders keep.

Each modality's tokens attend to the tokens of all other present modalities (text words,
audio frames, image positions, residues); the attended sequences are pooled and averaged
over present modalities. A learned null key lets a token attend to nothing when no other
modality is present.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import FUSIONS, Fusion, FusionOutput, masked_mean
from ..options import PosInt


class CrossBlock(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm_q, self.norm_kv = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ff = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim))

    def forward(self, q: torch.Tensor, kv: torch.Tensor, kv_padding: torch.Tensor) -> torch.Tensor:
        kv = self.norm_kv(kv)
        h = q + self.attn(self.norm_q(q), kv, kv, key_padding_mask=kv_padding, need_weights=False)[0]
        return h + self.ff(h)


@FUSIONS.register("cross_attention")
class CrossAttentionFusion(Fusion):
    """Each modality's token sequence attends to the other modalities' tokens (MulT); pooled, averaged."""

    consumes = "tokens"

    def __init__(self, in_dims: dict[str, int], out_dim: int, dropout: float = 0.0, heads: PosInt = 4) -> None:
        super().__init__(in_dims, out_dim, dropout)
        self.proj = nn.ModuleDict({m: nn.Linear(d, out_dim) for m, d in in_dims.items()})
        self.type_embed = nn.ParameterDict({m: nn.Parameter(torch.randn(out_dim) * 0.02) for m in in_dims})
        self.null = nn.Parameter(torch.randn(1, 1, out_dim) * 0.02)
        self.blocks = nn.ModuleDict({m: CrossBlock(out_dim, heads, dropout) for m in in_dims})
        self.post = nn.Sequential(nn.LayerNorm(out_dim), nn.Dropout(dropout))

    def forward(self, tokens: dict[str, tuple[torch.Tensor, torch.Tensor]], masks: dict[str, torch.Tensor]) -> FusionOutput:
        seqs = {m: self.proj[m](tokens[m][0]) + self.type_embed[m] for m in self.modalities}
        valid = {m: tokens[m][1] & masks[m][:, None] for m in self.modalities}
        b = masks[self.modalities[0]].shape[0]
        null_valid = torch.ones(b, 1, dtype=torch.bool, device=self.null.device)
        pooled = []
        for m in self.modalities:
            others = [o for o in self.modalities if o != m]
            kv = torch.cat([self.null.expand(b, -1, -1), *(seqs[o] for o in others)], dim=1)
            kv_valid = torch.cat([null_valid, *(valid[o] for o in others)], dim=1)
            h = self.blocks[m](seqs[m], kv, ~kv_valid)
            w = valid[m].float()
            pooled.append((h * w[..., None]).sum(1) / w.sum(1, keepdim=True).clamp(min=1.0))
        fused = masked_mean(torch.stack(pooled, dim=1), self.stack_masks(masks))
        return FusionOutput(self.post(fused))
