"""Image augmentation: random resized crop, horizontal flip and colour jitter, batched (one affine grid per sample)."""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from pydantic import Field

from . import AUGMENTS
from .base import AugmentOptions


class ImageAugment(AugmentOptions):
    crop_scale: Optional[tuple[float, float]] = Field(None, description="Random resized crop: area share range, e.g. [0.7, 1.0]; unset: off.")
    crop_ratio: tuple[float, float] = Field((3 / 4, 4 / 3), description="Aspect-ratio range of the crop.")
    flip: float = Field(0.0, ge=0, le=1, description="Probability of a horizontal flip (off for digits and text images).")
    brightness: float = Field(0.0, ge=0, lt=1, description="Pixel values scaled by a factor in [1 - b, 1 + b].")
    contrast: float = Field(0.0, ge=0, lt=1, description="Contrast around each image's mean scaled by [1 - c, 1 + c].")
    saturation: float = Field(0.0, ge=0, lt=1, description="Colour images: saturation scaled by [1 - s, 1 + s].")


def _uniform(n: int, low: float, high: float, g: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=g)


@AUGMENTS.register("image")
class ImageAugmenter:
    Options = ImageAugment

    def __init__(self, options: ImageAugment, mean: list[float], std: list[float]) -> None:
        self.o = options
        self.mean = torch.tensor(mean).view(1, -1, 1, 1)
        self.std = torch.tensor(std).view(1, -1, 1, 1)

    @classmethod
    def build(cls, options: ImageAugment, pre) -> "ImageAugmenter":
        return cls(options, pre.mean, pre.std)

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if not len(x):
            return x
        o = self.o
        if o.crop_scale is not None or o.flip > 0:
            x = self._geometry(x, g)
        if o.brightness or o.contrast or o.saturation:
            x = self._colour(x, g)
        return x

    def _geometry(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Crop (area share s, aspect r, random place) and flip, as one sampling grid; the crop is resized to the input size."""
        n, o = x.shape[0], self.o
        sx = sy = torch.ones(n)
        if o.crop_scale is not None:
            area = _uniform(n, *o.crop_scale, g)
            log_r = _uniform(n, math.log(o.crop_ratio[0]), math.log(o.crop_ratio[1]), g)
            ratio = torch.exp(log_r)
            sx, sy = torch.sqrt(area * ratio).clamp(max=1.0), torch.sqrt(area / ratio).clamp(max=1.0)
        tx = (2 * torch.rand(n, generator=g) - 1) * (1 - sx)
        ty = (2 * torch.rand(n, generator=g) - 1) * (1 - sy)
        flip = torch.where(torch.rand(n, generator=g) < o.flip, -1.0, 1.0)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0], theta[:, 0, 2] = sx * flip, tx
        theta[:, 1, 1], theta[:, 1, 2] = sy, ty
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        # the crop lies inside the image (|t| <= 1 - s), so sampling never leaves it
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def _colour(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        n, o = x.shape[0], self.o
        pixels = x * self.std + self.mean
        if o.brightness:
            pixels = pixels * _uniform(n, 1 - o.brightness, 1 + o.brightness, g).view(-1, 1, 1, 1)
        if o.contrast:
            mean = pixels.mean(dim=(1, 2, 3), keepdim=True)
            pixels = mean + (pixels - mean) * _uniform(n, 1 - o.contrast, 1 + o.contrast, g).view(-1, 1, 1, 1)
        if o.saturation and pixels.shape[1] == 3:
            grey = (pixels * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
            pixels = grey + (pixels - grey) * _uniform(n, 1 - o.saturation, 1 + o.saturation, g).view(-1, 1, 1, 1)
        return (pixels.clamp(0, 1) - self.mean) / self.std
