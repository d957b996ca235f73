"""Modality dropout: hide whole modalities per sample during training, so the model learns to cope without them."""
from __future__ import annotations

import torch


def drop_modalities(masks: dict[str, torch.Tensor], p: float, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Drop each present modality of each sample with probability ``p``, drawn per sample.

    A sample always keeps at least one of its present modalities (one is restored at random).
    """
    if p <= 0:
        return masks
    names = list(masks)
    present = torch.stack([masks[m] for m in names], dim=1)
    device = present.device
    keep = torch.rand(present.shape, generator=generator).to(device) >= p
    kept = present & keep
    empty = ~kept.any(dim=1) & present.any(dim=1)
    if empty.any():
        scores = torch.rand(present.shape, generator=generator).to(device).masked_fill(~present, -1.0)
        restore = torch.nn.functional.one_hot(scores.argmax(dim=1), len(names)).bool()
        kept = kept | (restore & empty[:, None])
    return {m: kept[:, i] for i, m in enumerate(names)}
