"""A batch: per-modality tensors with per-sample presence masks, targets and row positions."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch


@dataclass
class Batch:
    inputs: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]
    target: Optional[torch.Tensor]
    index: torch.Tensor

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(
            {k: v.to(device) for k, v in self.inputs.items()},
            {k: v.to(device) for k, v in self.masks.items()},
            None if self.target is None else self.target.to(device),
            self.index.to(device),
        )

    def with_masks(self, masks: dict[str, torch.Tensor]) -> "Batch":
        """The same batch with some modalities' presence replaced (e.g. to drop a modality)."""
        return Batch(self.inputs, {**self.masks, **masks}, self.target, self.index)
