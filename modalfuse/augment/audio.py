"""Audio augmentation on waveforms: time shift, gain, Gaussian noise, and SpecAugment-style time and frequency masks.

Frequency masks zero a band of the waveform's spectrum (rfft bins, then back), so they work with any audio
encoder, which computes its own log-mel front end.
"""
from __future__ import annotations

import torch
from pydantic import Field

from . import AUGMENTS
from .base import AugmentOptions


class AudioAugment(AugmentOptions):
    shift: float = Field(0.0, ge=0, lt=1, description="Circular shift by up to this share of the clip, either way.")
    gain_db: float = Field(0.0, ge=0, description="Random gain in ±gain_db decibels.")
    noise: float = Field(0.0, ge=0, description="Standard deviation of added Gaussian noise (full scale is 1).")
    time_masks: int = Field(0, ge=0, description="Number of time masks (segments set to silence).")
    time_mask_width: float = Field(0.1, gt=0, lt=1, description="Largest time mask, as a share of the clip.")
    freq_masks: int = Field(0, ge=0, description="Number of frequency masks (bands of the spectrum removed).")
    freq_mask_width: float = Field(0.1, gt=0, lt=1, description="Largest frequency mask, as a share of the band up to Nyquist.")

    def active(self) -> bool:
        return bool(self.shift or self.gain_db or self.noise or self.time_masks or self.freq_masks)


def _masks(n: int, length: int, count: int, width: float, g: torch.Generator) -> torch.Tensor:
    """[n, length] bool: ``count`` random segments of up to ``width`` × length per row."""
    pos = torch.arange(length).view(1, 1, -1)
    w = (torch.rand(n, count, 1, generator=g) * width * length).long()
    start = (torch.rand(n, count, 1, generator=g) * (length - w + 1)).long()
    return ((pos >= start) & (pos < start + w)).any(dim=1)


@AUGMENTS.register("audio")
class AudioAugmenter:
    Options = AudioAugment

    def __init__(self, options: AudioAugment) -> None:
        self.o = options

    @classmethod
    def build(cls, options: AudioAugment, pre) -> "AudioAugmenter":
        return cls(options)

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if not len(x):
            return x
        n, length, o = x.shape[0], x.shape[-1], self.o
        if o.shift:
            offset = ((2 * torch.rand(n, generator=g) - 1) * o.shift * length).long()
            index = (torch.arange(length).view(1, -1) - offset.view(-1, 1)) % length
            x = torch.gather(x, 1, index)
        if o.gain_db:
            x = x * 10 ** (((2 * torch.rand(n, 1, generator=g) - 1) * o.gain_db) / 20)
        if o.freq_masks:
            spectrum = torch.fft.rfft(x, dim=-1)
            keep = ~_masks(n, spectrum.shape[-1], o.freq_masks, o.freq_mask_width, g)
            x = torch.fft.irfft(spectrum * keep, n=length, dim=-1)
        if o.time_masks:
            x = x.masked_fill(_masks(n, length, o.time_masks, o.time_mask_width, g), 0.0)
        if o.noise:
            x = x + o.noise * torch.randn(x.shape, generator=g)
        return x
