"""The prediction target: class labels mapped to indices (fitted on train), or real numbers."""
from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from ..kinds.base import is_missing

Task = Literal["classification", "regression"]


#: integer targets with at most this many distinct values are classes; more is ambiguous (ask for data.task)
MAX_INFERRED_CLASSES = 50


def infer_task(values: pd.Series, table: str | None = None) -> Task:
    """The task, only when the target leaves no doubt; otherwise a ConfigError asking for ``data.task`` with the evidence.

    Text labels (none of them a number) and booleans are classes; integers with at most 50 distinct values are
    classes; numbers mostly with a fractional part are a regression. Mixed text and numbers, a few fractional
    values among integers, or many distinct integers could be either: guessing would silently change what is learnt.
    """
    present = values.dropna()
    column = values.name
    if pd.api.types.is_bool_dtype(present) or present.empty:
        return "classification"
    if not pd.api.types.is_numeric_dtype(present):
        as_numbers = pd.to_numeric(present.astype(str), errors="coerce")
        numeric = int(as_numbers.notna().sum())
        if numeric == 0:
            return "classification"
        if numeric < len(present):
            text = sorted({str(v) for v, n in zip(present, as_numbers) if pd.isna(n)})[:5]
            _ambiguous(column, table, f"{numeric} of {len(present)} values are numbers but others are text ({text})")
        present = as_numbers  # every label is a number written as text ("0", "1.5"): judged as the numbers
    numbers = present.to_numpy(dtype=float)
    fractional = np.mod(numbers, 1) != 0
    distinct = present.nunique()
    if not fractional.any():
        if distinct <= MAX_INFERRED_CLASSES:
            return "classification"
        _ambiguous(column, table, f"{distinct} distinct integer values (dtype {present.dtype}): classes or a quantity?")
    distinct_fractional = pd.Series(numbers[fractional]).nunique()
    if distinct_fractional * 2 >= distinct:
        return "regression"
    examples = sorted(set(numbers[fractional].tolist()))[:3]
    _ambiguous(column, table, f"{distinct - distinct_fractional} of {distinct} distinct values are integers, "
               f"{distinct_fractional} are not (e.g. {examples}; dtype {present.dtype})")
    raise AssertionError  # unreachable


def _ambiguous(column: object, table: str | None, evidence: str) -> None:
    where = f" in {table}" if table else ""
    raise ConfigError(f"data.task: cannot tell whether target {column!r}{where} is classification or regression: {evidence}; "
                      f"set data.task: classification or data.task: regression")


class TargetEncoder:
    def __init__(self, task: Task, classes: list[Any] | None = None) -> None:
        self.task = task
        self.classes = list(classes) if classes is not None else None
        self._index = {c: i for i, c in enumerate(self.classes)} if self.classes is not None else {}

    def fit(self, values: pd.Series) -> None:
        self.fit_start()
        self.fit_update(values)
        self.fit_finish()

    def fit_start(self) -> None:
        self._seen: set = set()

    def fit_update(self, values) -> None:
        """Add training targets (a chunk of them: the classes are gathered as a set)."""
        if self.task == "classification":
            self._seen.update(_plain(v) for v in values if not is_missing(v))

    def fit_finish(self) -> None:
        if self.task == "classification":
            self.classes = sorted(self._seen, key=lambda c: (str(type(c)), c))
            self._index = {c: i for i, c in enumerate(self.classes)}

    def check(self, value: Any) -> None:
        """Raise the DataError ``encode`` would, as far as it is known before fitting (an empty or non-numeric target)."""
        if self.task == "classification" and self.classes is None:
            if is_missing(value):
                raise DataError("the target is empty")
        else:
            self.encode(value)

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


def require_target(labels: Any, target: str, columns: list) -> None:
    """The config error naming the missing column when ``labels`` (the target column's values) is None."""
    if labels is None:
        raise ConfigError(f"data.target: column {target!r} is not in the training table (columns: {list(columns)[:20]})")
