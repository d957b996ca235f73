"""Text augmentation: token dropout (each word piece replaced by the unknown token with a probability)."""
from __future__ import annotations

import torch
from pydantic import Field

from . import AUGMENTS
from .base import AugmentOptions


class TextAugment(AugmentOptions):
    token_dropout: float = Field(0.0, ge=0, lt=1, description="Probability of replacing each token by the unknown token.")


@AUGMENTS.register("text")
class TextAugmenter:
    Options = TextAugment

    def __init__(self, options: TextAugment, pad_id: int, unk_id: int, special: list[int]) -> None:
        self.o, self.unk_id = options, unk_id
        self.keep = torch.tensor(sorted({pad_id, *special}), dtype=torch.long)

    @classmethod
    def build(cls, options: TextAugment, pre) -> "TextAugmenter":
        info = pre.encoder_info()
        special = list(pre.tokenizer.all_special_ids) if pre.options.pretrained else []
        return cls(options, info["pad_id"], info["unk_id"], special)

    def __call__(self, ids: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        drop = (torch.rand(ids.shape, generator=g) < self.o.token_dropout) & ~torch.isin(ids, self.keep)
        return ids.masked_fill(drop, self.unk_id)
