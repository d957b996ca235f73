"""Preprocessor contract: decode a table cell, fit state on training rows, encode to an array.

Decoding (reading files, parsing strings) does not depend on fitted state, so its results
can be cached on disk; fitting (vocabularies, statistics, category maps) sees the training
split only; encoding applies the fitted state to one decoded value.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ...config import ModalityConfig


def is_missing(value: Any) -> bool:
    """An empty cell: None, NaN, or an empty/blank string."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str) and not value.strip():
        return True
    return False


class Preprocessor(ABC):
    """Turns the cells of one modality into fixed-shape arrays; state is JSON-serialisable."""

    kind: ClassVar[str]
    #: whether decoded values are worth caching on disk (file decoding)
    cacheable: ClassVar[bool] = False
    #: values that cannot be stacked into one tensor (graphs) are always stored once per distinct value
    indexed: ClassVar[bool] = False

    def __init__(self, config: ModalityConfig) -> None:
        self.config = config
        self.options = config.options
        self.fitted = False

    def decode(self, cells: tuple[Any, ...], base_dir: Path | None) -> Any | None:
        """Read one row's cells; None when the modality is missing. Raises DataError."""
        if all(is_missing(c) for c in cells):
            return None
        return self._decode(cells, base_dir)

    @abstractmethod
    def _decode(self, cells: tuple[Any, ...], base_dir: Path | None) -> Any | None: ...

    def fit(self, values: list[Any]) -> None:
        """Fit state on decoded, present training values."""
        self.fitted = True

    @abstractmethod
    def encode(self, value: Any) -> np.ndarray:
        """Fitted transform of one decoded value. Raises DataError."""

    @abstractmethod
    def empty(self) -> np.ndarray:
        """The placeholder stored for a missing value (never seen by fusion)."""

    def stack(self, values: list[Any]) -> Any:
        """Encoded values → the tensor (or value table) the encoder reads."""
        return torch.from_numpy(np.stack(values)) if values else torch.from_numpy(self.empty()[None][:0])

    def encoder_info(self) -> dict[str, Any]:
        """What the encoder needs to build itself (vocabulary size, channels, ...)."""
        return {}

    def decode_key(self) -> dict[str, Any]:
        """The options that change decoding, for the cache key."""
        return self.options.model_dump()

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.fitted = True


def resolve_path(value: Any, base_dir: Path | None) -> Path:
    path = Path(str(value).strip())
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path
