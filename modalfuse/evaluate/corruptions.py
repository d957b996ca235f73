"""Per-modality corruptions at a level in [0, 1], applied to encoded batches (0 leaves the input alone).

vector / tabular: Gaussian noise (σ = level, in standardised units) and dropped entries
(set to the training mean, probability = level). image: Gaussian noise, blur (σ = 3·level px),
occlusion (a square covering `level` of the area). audio: white noise (σ = 2·level·RMS) and
dropped 10 ms frames. text: typos (a misspelt word is out of vocabulary: token → <unk>) and
dropped words. sequence: random substitutions.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

Corruption = Callable[[torch.Tensor, float, torch.Generator, dict[str, Any]], torch.Tensor]


def _bernoulli(shape: torch.Size, p: float, g: torch.Generator) -> torch.Tensor:
    return torch.rand(shape, generator=g) < p


def gaussian_noise(x: torch.Tensor, level: float, g: torch.Generator, info: dict[str, Any]) -> torch.Tensor:
    cols = info.get("n_numeric")
    noise = torch.randn(x.shape, generator=g) * level
    if cols is not None:  # tabular: numbers only, not indicators or category indices
        noise[:, cols:] = 0
    return x + noise


def dropped_entries(x: torch.Tensor, level: float, g: torch.Generator, info: dict[str, Any]) -> torch.Tensor:
    drop = _bernoulli(x.shape, level, g)
    cols = info.get("n_numeric")
    if cols is None:
        return x.masked_fill(drop, 0.0)
    out = x.clone()
    num = drop[:, :cols]
    out[:, :cols] = out[:, :cols].masked_fill(num, 0.0)
    out[:, cols : 2 * cols] = torch.where(num, torch.ones_like(out[:, cols : 2 * cols]), out[:, cols : 2 * cols])
    out[:, 2 * cols :] = out[:, 2 * cols :].masked_fill(drop[:, 2 * cols :], 0.0)
    return out


def image_noise(x: torch.Tensor, level: float, g: torch.Generator, info: dict[str, Any]) -> torch.Tensor:
    return x + torch.randn(x.shape, generator=g) * level * 2


def blur(x: torch.Tensor, level: float, g: torch.Generator, info: dict[str, Any]) -> torch.Tensor:
    sigma = 3.0 * level
    if sigma <= 0:
        return x
    radius = max(1, int(round(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    h = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(h, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def occlusion(x: torch.Tensor, level: float, g: torch.Generator, info: dict[str, Any]) -> torch.Tensor:
    n, _, hgt, wid = x.shape
    side_h, side_w = int(round(hgt * level**0.5)), int(round(wid * level**0.5))
    if side_h == 0 or side_w == 0:
        return x
    out = x.clone()
    top = torch.randint(0, hgt - side_h + 1, (n,), generator=g)
    left = torch.randint(0, wid - side_w + 1, (n,), generator=g)
    for i in range(n):
        out[i, :, top[i] : top[i] + side_h, left[i] : left[i] + side_w] = 0.0
    return out


def white_noise(x: torch.Tensor, level: float, g: torch.Generator, info: dict[str, Any]) -> torch.Tensor:
    rms = x.pow(2).mean(dim=1, keepdim=True).sqrt().clamp(min=1e-4)
    return x + torch.randn(x.shape, generator=g) * rms * 2 * level


def dropped_frames(x: torch.Tensor, level: float, g: torch.Generator, info: dict[str, Any]) -> torch.Tensor:
    frame = max(1, int(info.get("sample_rate", 8000) * 0.01))
    n_frames = -(-x.shape[1] // frame)
    drop = _bernoulli(torch.Size((x.shape[0], n_frames)), level, g).repeat_interleave(frame, dim=1)[:, : x.shape[1]]
    return x.masked_fill(drop, 0.0)


def typos(x: torch.Tensor, level: float, g: torch.Generator, info: dict[str, Any]) -> torch.Tensor:
    real = x != info["pad_id"]
    return torch.where(real & _bernoulli(x.shape, level, g), torch.full_like(x, info.get("unk_id", 1)), x)


def dropped_words(x: torch.Tensor, level: float, g: torch.Generator, info: dict[str, Any]) -> torch.Tensor:
    pad = info["pad_id"]
    keep = (x != pad) & ~_bernoulli(x.shape, level, g)
    out = torch.full_like(x, pad)
    for i in range(x.shape[0]):
        kept = x[i][keep[i]]
        out[i, : kept.numel()] = kept
    return out


def substitutions(x: torch.Tensor, level: float, g: torch.Generator, info: dict[str, Any]) -> torch.Tensor:
    real = x != info["pad_id"]
    random = torch.randint(1, info["vocab_size"], x.shape, generator=g)
    return torch.where(real & _bernoulli(x.shape, level, g), random, x)


CORRUPTIONS: dict[str, dict[str, Corruption]] = {
    "vector": {"gaussian_noise": gaussian_noise, "dropped_entries": dropped_entries},
    "tabular": {"gaussian_noise": gaussian_noise, "dropped_entries": dropped_entries},
    "image": {"noise": image_noise, "blur": blur, "occlusion": occlusion},
    "audio": {"white_noise": white_noise, "dropped_frames": dropped_frames},
    "text": {"typos": typos, "dropped_words": dropped_words},
    "sequence": {"substitutions": substitutions},
}


def corrupt(kind: str, name: str, x: torch.Tensor, level: float, seed: int = 0, info: dict[str, Any] | None = None) -> torch.Tensor:
    """Apply corruption ``name`` of modality ``kind`` at ``level``; level 0 returns ``x`` unchanged."""
    if level <= 0:
        return x
    return CORRUPTIONS[kind][name](x, float(level), torch.Generator().manual_seed(seed), info or {})
