"""Audio encoder: log-mel spectrogram computed in torch, then a residual CNN."""
from __future__ import annotations

import math


import torch
from torch import nn

from .base import ENCODERS, Encoder, EncoderInfo
from .blocks import ResidualCNN
from ..options import PosFloat, PosInt, Rate, Widths


def mel_filterbank(n_fft: int, n_mels: int, sample_rate: int, fmin: float = 0.0, fmax: float | None = None) -> torch.Tensor:
    """Triangular filters evenly spaced on the HTK mel scale, shape [n_mels, n_fft // 2 + 1]."""
    fmax = fmax or sample_rate / 2

    def hz_to_mel(f: float) -> float:
        return 2595.0 * math.log10(1.0 + f / 700.0)

    mels = torch.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2)
    hz = 700.0 * (10 ** (mels / 2595.0) - 1.0)
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lower, centre, upper = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    up = (freqs[None] - lower) / (centre - lower)
    down = (upper - freqs[None]) / (upper - centre)
    return torch.clamp(torch.minimum(up, down), min=0.0)


class LogMel(nn.Module):
    """Waveform [n, samples] → per-example normalised log-mel spectrogram [n, 1, mels, frames]."""

    def __init__(self, sample_rate: int, n_mels: int = 40, window_ms: float = 25.0, hop_ms: float = 10.0) -> None:
        super().__init__()
        win = int(sample_rate * window_ms / 1000)
        self.n_fft = 1 << (win - 1).bit_length()
        self.win_length = win
        self.hop = int(sample_rate * hop_ms / 1000)
        self.register_buffer("window", torch.hann_window(win), persistent=False)
        self.register_buffer("fbank", mel_filterbank(self.n_fft, n_mels, sample_rate), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wave, self.n_fft, self.hop, self.win_length, self.window, return_complex=True).abs() ** 2
        mel = torch.log(torch.einsum("mf,nft->nmt", self.fbank, spec) + 1e-6)
        mel = (mel - mel.mean(dim=(1, 2), keepdim=True)) / (mel.std(dim=(1, 2), keepdim=True) + 1e-5)
        return mel[:, None]


@ENCODERS.register("audio_cnn")
class AudioCNN(Encoder):
    """Log-mel spectrogram (torch.stft + mel filterbank) fed to a small residual CNN."""

    kinds = ("audio",)
    needs = ('sample_rate',)

    def __init__(
        self, dim: int, info: EncoderInfo, n_mels: PosInt = 40, hop_ms: PosFloat = 10.0,
        widths: Widths = (32, 64, 128), dropout: Rate = 0.1,
    ) -> None:
        super().__init__(dim, info)
        self.melspec = LogMel(info["sample_rate"], n_mels, hop_ms=hop_ms)
        self.net = ResidualCNN(1, tuple(widths), dim, dropout)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """The CNN's input, a log-mel spectrogram (fusions that run the CNN stage by stage start here)."""
        return self.melspec(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.prepare(x))

    def tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net.tokens(self.melspec(x))
