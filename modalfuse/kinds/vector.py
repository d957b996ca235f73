"""Precomputed feature vectors: one array-valued cell, or several numeric columns, standardised."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .base import KINDS, KindOptions, Preprocessor
from ..errors import RequestError
from .request import MAX_MAGNITUDE, NUMBER_SCHEMA, finite, finite_numbers, is_number, short


class VectorOptions(KindOptions):
    standardize: bool = True


@KINDS.register("vector")
class VectorPreprocessor(Preprocessor):
    Options = VectorOptions
    default_encoder = "vector_mlp"
    json_parts = True

    def setup(self) -> None:
        self.dim = 0
        self.mean: list[float] = []
        self.std: list[float] = []

    def _decode(self, cells: tuple[Any, ...], base_dir: Path | None) -> np.ndarray | None:
        if len(cells) == 1 and not _is_scalar(cells[0]):
            cell = cells[0]
            try:
                if isinstance(cell, str):
                    vec = np.asarray(cell.replace(",", " ").split(), dtype=np.float32)
                else:
                    vec = np.asarray(cell, dtype=np.float32).reshape(-1)
            except (TypeError, ValueError):
                raise DataError(f"expected a list of numbers, got {str(cell)[:60]!r}") from None
        else:
            values = []
            for i, cell in enumerate(cells):
                try:
                    values.append(float(cell))
                except (TypeError, ValueError):
                    raise DataError(f"expected a number, got {cell!r}", column=self.config.columns[i]) from None
            vec = np.asarray(values, dtype=np.float32)
        if vec.size == 0 or np.isnan(vec).all():
            return None
        if not np.isfinite(vec).all():
            raise DataError("the vector holds NaN or infinite entries; leave the whole cell empty to mark it missing")
        return vec

    def fit(self, values: list[np.ndarray]) -> None:
        if values:
            # the most common length is the vector's; rows of another length fail in encode, naming their row
            lengths = [int(v.shape[0]) for v in values]
            self.dim = max(set(lengths), key=lambda n: (lengths.count(n), -lengths.index(n)))
            stack = np.stack([self.encode_raw(v) for v in values if v.shape[0] == self.dim])
            if self.options.standardize:
                self.mean = stack.mean(axis=0).tolist()
                self.std = np.where(stack.std(axis=0) > 1e-8, stack.std(axis=0), 1.0).tolist()
        super().fit(values)

    def encode_raw(self, value: np.ndarray) -> np.ndarray:
        if self.dim and value.shape[0] != self.dim:
            raise DataError(f"expected a vector of length {self.dim}, got length {value.shape[0]}")
        return value

    def encode(self, value: np.ndarray) -> np.ndarray:
        value = self.encode_raw(value)
        if self.mean:
            value = (value - np.asarray(self.mean, dtype=np.float32)) / np.asarray(self.std, dtype=np.float32)
        return value.astype(np.float32)

    def empty(self) -> np.ndarray:
        return np.zeros(self.dim, dtype=np.float32)

    def encoder_info(self) -> dict[str, Any]:
        return {"input_dim": self.dim}

    def state_dict(self) -> dict[str, Any]:
        return {"dim": self.dim, "mean": self.mean, "std": self.std}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.dim, self.mean, self.std = state["dim"], state["mean"], state["std"]
        super().load_state_dict(state)

    def schema(self) -> dict[str, Any]:
        columns = self.config.columns
        return {**super().schema(), "type": "array of numbers", "length": self.dim if len(columns) == 1 else len(columns)}

    request_schema_exact = True

    def request_schema(self) -> dict[str, Any]:
        n = self.dim if len(self.config.columns) == 1 else len(self.config.columns)
        return {"type": "array", "items": NUMBER_SCHEMA, "minItems": n or 1, **({"maxItems": n} if n else {})}

    def request_cells(self, value: Any, field: str) -> tuple:
        columns = self.config.columns
        expected_len = self.dim if len(columns) == 1 else len(columns)
        expect = f"a list of {expected_len} finite numbers of magnitude at most {MAX_MAGNITUDE:g}"
        if not isinstance(value, list):
            raise RequestError(field, f"expected a list of numbers, got {type(value).__name__}", expect)
        if not value:
            raise RequestError(field, "the vector is empty (omit the field or send null for a missing modality)", expect)
        if not finite_numbers(value):  # find and name the first bad entry
            for j, x in enumerate(value):
                if not is_number(x):
                    raise RequestError(f"{field}[{j}]", f"expected a number, got {short(x)}", expect)
                if not finite(x):
                    raise RequestError(f"{field}[{j}]", f"expected a finite number of magnitude at most {MAX_MAGNITUDE:g}, got {short(x)}", expect)
        if expected_len and len(value) != expected_len:
            raise RequestError(field, f"wrong vector length: expected {expected_len} numbers, got {len(value)}", expect)
        try:
            array = np.asarray(value, dtype=np.float32)
        except OverflowError:
            array = np.full(1, np.inf, dtype=np.float32)
        if not np.isfinite(array).all():
            raise RequestError(field, "values out of range for float32", expect)
        return (array,) if len(columns) == 1 else tuple(float(x) for x in value)


def _is_scalar(cell: Any) -> bool:
    return isinstance(cell, (int, float, np.number)) or (isinstance(cell, str) and len(cell.replace(",", " ").split()) <= 1)
