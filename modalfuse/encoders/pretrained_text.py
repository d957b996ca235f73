"""Pretrained text encoder: any Hugging Face model (name or folder), mean-pooled, projected."""
from __future__ import annotations

import torch
from torch import nn

from ..hub import resolve_pretrained
from .base import ENCODERS, Encoder, EncoderInfo
from .frozen_cache import FrozenCache


@ENCODERS.register("pretrained_text")
class PretrainedText(Encoder):
    """A Hugging Face transformer (e.g. the bundled MiniLM), frozen or fine-tuned, mean pooling."""

    kinds = ("text",)
    needs = ('pad_id', 'pretrained')

    def __init__(self, dim: int, info: EncoderInfo, freeze: bool = True, cache: bool = True) -> None:
        super().__init__(dim, info)
        from transformers import AutoModel

        self.pad_id = info["pad_id"]
        self.freeze = freeze
        self.backbone = AutoModel.from_pretrained(resolve_pretrained(info["pretrained"]))
        self.backbone.requires_grad_(not freeze)
        self.proj = nn.Linear(self.backbone.config.hidden_size, dim)
        #: frozen backbone: pooled outputs per distinct token row, so each text is encoded once (in memory and on disk)
        self.frozen_cache = FrozenCache({"encoder": "pretrained_text", "model": info["pretrained"], "pad": self.pad_id}) if freeze and cache else None

    def train(self, mode: bool = True) -> "PretrainedText":
        super().train(mode)
        if self.freeze:
            self.backbone.eval()
        return self

    def _hidden(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = (ids != self.pad_id).long()
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            return self.backbone(input_ids=ids, attention_mask=mask).last_hidden_state, mask

    def pooled(self, ids: torch.Tensor) -> torch.Tensor:
        """The backbone's mean-pooled sentence embeddings [n, hidden] (before the projection)."""

        hidden, mask = self._hidden(ids)
        return (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.frozen_cache is None:
            return self.proj(self.pooled(ids))
        return self.proj(self.frozen_cache.lookup(ids, self.pooled))

    def tokens(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden, mask = self._hidden(ids)
        return self.proj(hidden), mask.bool()
