"""A third-party modalfuse plugin: importing it registers one kind, one encoder, one fusion and one head."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from modalfuse.encoders import ENCODERS, Encoder
from modalfuse.fusion import FUSIONS, Fusion, FusionOutput
from modalfuse.heads import HEADS
from modalfuse.heads.classification import MulticlassHead
from modalfuse.kinds import KINDS, KindOptions, Preprocessor
from modalfuse.options import PosInt


class DigitsOptions(KindOptions):
    width: PosInt = 6


@KINDS.register("digit_string")
class DigitStringKind(Preprocessor):
    """A string of decimal digits ("0412"), encoded as the digit counts 0-9 scaled by length."""

    Options = DigitsOptions
    default_encoder = "toy_counts"

    def _decode(self, cells, base_dir):
        text = str(cells[0]).strip()
        if not text.isdigit():
            from modalfuse.errors import DataError

            raise DataError(f"expected decimal digits, got {text[:20]!r}")
        return text

    def encode(self, value: str) -> np.ndarray:
        counts = np.bincount([int(c) for c in value], minlength=10).astype(np.float32)
        return counts / max(1, len(value))

    def empty(self) -> np.ndarray:
        return np.zeros(10, np.float32)

    def encoder_info(self) -> dict[str, Any]:
        return {"input_dim": 10}


@ENCODERS.register("toy_counts")
class ToyCounts(Encoder):
    """One linear layer over the digit counts."""

    kinds = ("digit_string", "vector")

    def __init__(self, dim: int, info: dict[str, Any], scale: float = 1.0) -> None:
        super().__init__(dim, info)
        self.scale = scale
        self.proj = nn.Linear(info["input_dim"], dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x * self.scale)


@FUSIONS.register("toy_product")
class ToyProduct(Fusion):
    """Elementwise product of the present modalities' projections (a missing one contributes 1)."""

    def __init__(self, in_dims: dict[str, int], out_dim: int, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__(in_dims, out_dim, dropout)
        self.proj = nn.ModuleDict({m: nn.Linear(d, out_dim, bias=bias) for m, d in in_dims.items()})

    def forward(self, embeddings, masks) -> FusionOutput:
        out = torch.ones(next(iter(masks.values())).shape[0], self.out_dim)
        for m in self.modalities:
            out = out * torch.where(masks[m][:, None], torch.tanh(self.proj[m](embeddings[m])) + 1, torch.ones_like(out))
        return FusionOutput(out)


@HEADS.register("toy_smooth")
class ToySmoothHead(MulticlassHead):
    """Cross-entropy with label smoothing."""

    def __init__(self, in_dim, hidden: int, n_outputs: int, dropout: float, smoothing: float = 0.1) -> None:
        super().__init__(in_dim, hidden, n_outputs, dropout)
        self.smoothing = smoothing

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out, target.long(), label_smoothing=self.smoothing)
