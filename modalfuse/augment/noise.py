"""Tables and feature vectors: Gaussian noise on the standardised numbers (not on missing flags or category codes)."""
from __future__ import annotations

import torch
from pydantic import Field

from . import AUGMENTS
from .base import AugmentOptions


class NoiseAugment(AugmentOptions):
    noise: float = Field(0.0, ge=0, description="Standard deviation of Gaussian noise added to each standardised number.")


class _Noise:
    Options = NoiseAugment

    def __init__(self, options: NoiseAugment, numeric: slice, flags: slice | None = None) -> None:
        self.o, self.numeric, self.flags = options, numeric, flags

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        part = x[:, self.numeric]
        noise = self.o.noise * torch.randn(part.shape, generator=g)
        if self.flags is not None:  # a missing number stays 0 beside its flag
            noise = noise * (1 - x[:, self.flags])
        out = x.clone()
        out[:, self.numeric] = part + noise
        return out


@AUGMENTS.register("tabular")
class TabularAugmenter(_Noise):
    Options = NoiseAugment

    @classmethod
    def build(cls, options: NoiseAugment, pre) -> "TabularAugmenter":
        k = len(pre.numeric)
        return cls(options, slice(0, k), slice(k, 2 * k))


@AUGMENTS.register("vector")
class VectorAugmenter(_Noise):
    Options = NoiseAugment

    @classmethod
    def build(cls, options: NoiseAugment, pre) -> "VectorAugmenter":
        return cls(options, slice(None))
