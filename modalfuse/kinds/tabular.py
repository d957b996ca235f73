"""Tables: numeric columns standardised (with missing-value indicators), categorical columns mapped to indices.

The encoded row is one float vector: standardised numbers, their missing indicators, then
category indices (0 = missing or, with ``handle_unknown: ignore``, unseen).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from ..errors import DataError
from .base import KINDS, KindOptions, Preprocessor, is_missing
from ..errors import RequestError
from .request import MAX_MAGNITUDE, NUMBER_SCHEMA, column_object, finite, is_number, object_schemas, short


class TabularOptions(KindOptions):
    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    handle_unknown: Literal["error", "ignore"] = "error"


@KINDS.register("tabular")
class TabularPreprocessor(Preprocessor):
    Options = TabularOptions
    default_encoder = "tabular_mlp"
    json_parts = True

    def setup(self) -> None:
        self.numeric = list(self.options.numeric)
        self.categorical = list(self.options.categorical)
        unknown = sorted(set(self.numeric + self.categorical) - set(self.config.columns))
        if unknown:
            from ..errors import ConfigError

            raise ConfigError(f"modalities.{self.config.name}: columns {unknown} are listed as numeric/categorical but not in columns")
        self._pos = {c: self.config.columns.index(c) for c in self.numeric + self.categorical}
        self.mean = [0.0] * len(self.numeric)
        self.std = [1.0] * len(self.numeric)
        self.categories: list[list[str]] = [[] for _ in self.categorical]
        self._maps: list[dict[str, int]] = [{} for _ in self.categorical]

    def _decode(self, cells: tuple[Any, ...], base_dir: Path | None) -> tuple[list[float], list[str | None]]:
        numbers = []
        for col in self.numeric:
            cell = cells[self._pos[col]]
            if is_missing(cell):
                numbers.append(math.nan)
                continue
            try:
                value = float(cell)
            except (TypeError, ValueError):
                raise DataError(f"expected a number, got {cell!r}", column=col) from None
            if not math.isfinite(value):
                raise DataError(f"expected a finite number, got {cell!r}", column=col)
            numbers.append(value)
        cats = [None if is_missing(cells[self._pos[c]]) else _category(cells[self._pos[c]]) for c in self.categorical]
        return numbers, cats

    def fit(self, values: list[tuple[list[float], list[str | None]]]) -> None:
        self.fit_start()
        self.fit_update(values)
        self.fit_finish()

    def fit_start(self) -> None:
        """Running count, mean and squared deviations per numeric column (Chan et al. merge) and category sets."""
        k = len(self.numeric)
        self._run = [np.zeros(k), np.zeros(k), np.zeros(k)]
        self._seen: list[set] = [set() for _ in self.categorical]

    def fit_update(self, values, counts=None) -> None:
        if not len(values):
            return
        w = np.ones(len(values)) if counts is None else np.asarray(counts, dtype=np.float64)
        nums = np.asarray([v[0] for v in values], dtype=np.float64).reshape(len(values), len(self.numeric))
        present = ~np.isnan(nums)
        weight = present * w[:, None]
        n_b = weight.sum(axis=0)
        with np.errstate(all="ignore"):
            mean_b = np.where(n_b > 0, np.nansum(nums * weight, axis=0) / n_b, 0.0)
            m2_b = np.nansum(weight * (np.where(present, nums, 0.0) - mean_b) ** 2, axis=0)
        n_a, mean_a, m2_a = self._run
        n = n_a + n_b
        with np.errstate(all="ignore"):
            delta = mean_b - mean_a
            mean = np.where(n > 0, mean_a + delta * n_b / np.where(n > 0, n, 1), 0.0)
            m2 = m2_a + m2_b + np.where(n > 0, delta * delta * n_a * n_b / np.where(n > 0, n, 1), 0.0)
        self._run = [n, mean, m2]
        for j in range(len(self.categorical)):
            self._seen[j].update(v[1][j] for v in values if v[1][j] is not None)

    def fit_finish(self) -> None:
        n, mean, m2 = self._run
        if n.size and n.max() > 0 or self._seen and any(self._seen):
            with np.errstate(all="ignore"):
                std = np.where(n > 0, np.sqrt(m2 / np.where(n > 0, n, 1)), 1.0)
            self.mean = np.where(n > 0, mean, 0.0).tolist()
            self.std = np.where(std > 1e-12, std, 1.0).tolist()
            self.categories = [sorted(seen) for seen in self._seen]
        self._maps = [{c: i + 1 for i, c in enumerate(cats)} for cats in self.categories]
        self.fitted = True

    def encode(self, value: tuple[list[float], list[str | None]]) -> np.ndarray:
        numbers, cats = value
        nums = np.asarray(numbers, dtype=np.float64)
        missing = np.isnan(nums)
        standard = np.where(missing, 0.0, (nums - np.asarray(self.mean)) / np.asarray(self.std))
        indices = []
        for j, cat in enumerate(cats):
            if cat is None:
                indices.append(0)
            elif cat in self._maps[j]:
                indices.append(self._maps[j][cat])
            elif self.options.handle_unknown == "ignore":
                indices.append(0)
            else:
                known = ", ".join(repr(c) for c in self.categories[j][:20])
                raise DataError(f"unknown category {cat!r}; expected one of {known}", column=self.categorical[j])
        return np.concatenate([standard, missing.astype(np.float64), np.asarray(indices, dtype=np.float64)]).astype(np.float32)

    def empty(self) -> np.ndarray:
        return np.zeros(2 * len(self.numeric) + len(self.categorical), dtype=np.float32)

    def imputed(self, values: list[tuple[list[float], list[str | None]]]) -> dict[str, int]:
        """Empty numeric cells (encoded as the mean, with their missing flag), empty categorical cells and unseen
        categories (``handle_unknown: ignore``), both encoded as index 0."""
        empty_numbers = sum(int(np.isnan(np.asarray(v[0], dtype=np.float64)).sum()) for v in values)
        empty_cats = sum(c is None for v in values for c in v[1])
        unknown = sum(c is not None and c not in self._maps[j] for v in values for j, c in enumerate(v[1]))
        return {"empty numeric cells imputed": empty_numbers, "empty categorical cells": empty_cats,
                "unseen categories mapped to unknown": unknown}

    def encoder_info(self) -> dict[str, Any]:
        return {"n_numeric": len(self.numeric), "cardinalities": [len(c) + 1 for c in self.categories]}

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "categories": self.categories}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean, self.std, self.categories = state["mean"], state["std"], state["categories"]
        self._maps = [{c: i + 1 for i, c in enumerate(cats)} for cats in self.categories]
        super().load_state_dict(state)

    def schema(self) -> dict[str, Any]:
        return {**super().schema(), "type": "object", "numeric": list(self.numeric),
                "categorical": {c: list(cats) for c, cats in zip(self.categorical, self.categories)},
                "handle_unknown": self.options.handle_unknown}

    request_schema_exact = True

    def request_schema(self) -> dict[str, Any]:
        return self._schemas()[0]

    def missing_schema(self) -> dict[str, Any]:
        return self._schemas()[1]

    def _schemas(self) -> tuple[dict, dict]:
        present: dict[str, Any] = {c: NUMBER_SCHEMA for c in self.numeric}
        missing = {c: {"type": "string", "pattern": "^\\s*$"} for c in self.categorical}
        for c, cats in zip(self.categorical, self.categories):
            if self.options.handle_unknown == "error":
                present[c] = {"enum": [form for cat in cats for form in _json_forms(cat)]}
            else:
                present[c] = {"anyOf": [{"type": "string", "pattern": "\\S"}, NUMBER_SCHEMA]}
        others = [c for c in self.config.columns if c not in present]  # neither numeric nor categorical: ignored
        for c in others:
            present[c] = {"anyOf": [{"type": "string", "pattern": "\\S"}, NUMBER_SCHEMA]}
        return object_schemas(self.config.columns, present, missing)

    def request_cells(self, value: Any, field: str) -> tuple:
        columns = self.config.columns
        value = column_object(columns, value, field)
        cells = []
        for c in columns:
            v = value.get(c)
            if c in self.numeric:
                if v is not None and not is_number(v):
                    raise RequestError(f"{field}.{c}", f"expected a number or null, got {short(v)}", "a number")
                if v is not None and not finite(v):
                    raise RequestError(f"{field}.{c}", f"expected a finite number of magnitude at most {MAX_MAGNITUDE:g}, got {short(v)} (use null for missing)", "a finite number")
            elif v is not None and not (isinstance(v, str) or is_number(v)):
                raise RequestError(f"{field}.{c}", f"expected a category (string or number) or null, got {type(v).__name__}")
            elif is_number(v) and not finite(v):
                raise RequestError(f"{field}.{c}", f"expected a category, got {v!r} (use null for missing)")
            cells.append(v)
        return tuple(cells)

    def example(self, n: int, generator):
        import torch

        x = super().example(n, generator)
        k = len(self.numeric)
        x[:, k:2 * k] = 0.0  # the missing-value flags of numeric columns
        for j, card in enumerate(self.encoder_info()["cardinalities"]):
            x[:, 2 * k + j] = torch.randint(0, card, (n,), generator=generator).float()
        return x


def _json_forms(category: str) -> list:
    """The JSON values a request may send for ``category``: the string, and the number that reads as it."""
    forms: list = [category]
    try:
        number = float(category)
    except ValueError:
        return forms
    if math.isfinite(number) and _category(number) == category:
        forms.append(int(number) if number.is_integer() else number)
    return forms


def _category(cell: Any) -> str:
    """Categories are compared as strings; 3.0 and 3 are the same category."""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()
