"""The prediction target: class labels mapped to indices (fitted on train), or real numbers."""
from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..errors import DataError
from ..kinds.base import is_missing

Task = Literal["classification", "regression"]


def infer_task(values: pd.Series) -> Task:
    """Classification for non-numeric or few-valued integer targets, else regression."""
    present = values.dropna()
    if not pd.api.types.is_numeric_dtype(present) or pd.api.types.is_bool_dtype(present):
        return "classification"
    integral = np.all(np.mod(present.to_numpy(dtype=float), 1) == 0)
    return "classification" if integral and present.nunique() <= 50 else "regression"


class TargetEncoder:
    def __init__(self, task: Task, classes: list[Any] | None = None) -> None:
        self.task = task
        self.classes = list(classes) if classes is not None else None
        self._index = {c: i for i, c in enumerate(self.classes)} if self.classes is not None else {}

    def fit(self, values: pd.Series) -> None:
        if self.task == "classification":
            present = [_plain(v) for v in values if not is_missing(v)]
            self.classes = sorted(set(present), key=lambda c: (str(type(c)), c))
            self._index = {c: i for i, c in enumerate(self.classes)}

    def encode(self, value: Any) -> float:
        if is_missing(value):
            raise DataError("the target is empty")
        if self.task == "classification":
            key = _plain(value)
            if key not in self._index:
                raise DataError(f"unknown class {value!r}; the model knows {self.classes}")
            return float(self._index[key])
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise DataError(f"expected a number as regression target, got {value!r}") from None
        if not math.isfinite(number):
            raise DataError(f"expected a finite regression target, got {value!r}")
        return number

    def decode(self, indices: np.ndarray) -> np.ndarray:
        if self.task == "classification":
            return np.asarray(self.classes, dtype=object)[indices]
        return indices

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.task == "classification" else 1


def _plain(value: Any) -> Any:
    """numpy scalars become Python values so they compare and serialise to JSON."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
