"""Pretrained text encoder: any Hugging Face model (name or folder), mean-pooled, projected."""
from __future__ import annotations

import torch
from torch import nn

from ..hub import resolve_pretrained
from .base import ENCODERS, Encoder, EncoderInfo


@ENCODERS.register("pretrained_text")
class PretrainedText(Encoder):
    """A Hugging Face transformer (e.g. the bundled MiniLM), frozen or fine-tuned, mean pooling."""

    kinds = ("text",)
    needs = ('pad_id', 'pretrained')

    def __init__(self, dim: int, info: EncoderInfo, freeze: bool = True) -> None:
        super().__init__(dim, info)
        from transformers import AutoModel

        self.pad_id = info["pad_id"]
        self.freeze = freeze
        self.backbone = AutoModel.from_pretrained(resolve_pretrained(info["pretrained"]))
        self.backbone.requires_grad_(not freeze)
        self.proj = nn.Linear(self.backbone.config.hidden_size, dim)
        #: frozen backbone: pooled outputs per distinct token row, so each text is encoded once per run
        self._pooled_cache: dict[bytes, torch.Tensor] = {}

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
        if not self.freeze:
            return self.proj(self.pooled(ids))
        keys = [row.tobytes() for row in ids.cpu().numpy()]
        todo = [i for i, k in enumerate(keys) if k not in self._pooled_cache]
        if todo:
            fresh = self.pooled(ids[todo]).detach()
            for i, vec in zip(todo, fresh):
                self._pooled_cache[keys[i]] = vec
        return self.proj(torch.stack([self._pooled_cache[k] for k in keys]).to(ids.device))

    def tokens(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden, mask = self._hidden(ids)
        return self.proj(hidden), mask.bool()
