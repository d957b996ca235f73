"""Multichannel signals (sensors, physiology): a channels × steps array per row, standardised per channel.

A row's cells are either one cell holding the whole array (a nested list or array, a JSON string, or a
path to a ``.npy`` / ``.csv`` / ``.ts`` file relative to the table), or one cell per channel (each a 1-D
series, e.g. ``acc_x, acc_y, acc_z``). Series longer than ``length`` are cropped and shorter ones padded
with zeros after standardising (the mask of real steps is not needed by the encoders: zeros are the
channel mean). ``read_ts`` reads the UEA/sktime ``.ts`` text format.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np
from pydantic import Field

from ..errors import DataError, RequestError
from .base import KINDS, KindOptions, Preprocessor, resolve_path
from .request import NUMBER_SCHEMA, column_object, finite_numbers, object_schemas


class TimeseriesOptions(KindOptions):
    length: Optional[int] = Field(None, ge=1, le=1_000_000, description="Steps per series; unset: the longest training series.")
    standardize: bool = Field(True, description="Subtract each channel's training mean and divide by its standard deviation.")


@KINDS.register("timeseries")
class TimeseriesPreprocessor(Preprocessor):
    """Channels × steps float arrays; channel statistics and the length are fitted on the training rows."""

    Options = TimeseriesOptions
    default_encoder = "timeseries_cnn"
    file_cells = True  # a cell may name a .npy/.csv/.ts file beside the table
    json_parts = True
    cacheable = True

    def setup(self) -> None:
        self.channels = 0
        self.length = self.options.length or 0
        self.mean: list[float] = []
        self.std: list[float] = []

    def _decode(self, cells: tuple[Any, ...], base_dir: Path | None) -> np.ndarray:
        if len(cells) == 1:
            array = _as_array(cells[0], base_dir)
        else:
            series = []
            for column, cell in zip(self.config.columns, cells):
                try:
                    one = _as_array(cell, base_dir)
                except DataError as err:
                    raise DataError(err.reason, column=column, file=err.file) from None
                if one.shape[0] != 1:
                    raise DataError(f"expected one series per column, got an array of shape {one.shape}", column=column)
                series.append(one[0])
            if len({len(s) for s in series}) > 1:
                raise DataError(f"the channels have different lengths {[len(s) for s in series]}")
            array = np.stack(series)
        if not np.isfinite(array).all():
            raise DataError("the series holds NaN or infinite values")
        return array

    def fit(self, values: list[np.ndarray]) -> None:
        if values:
            widths = {v.shape[0] for v in values}
            if len(widths) > 1:
                raise DataError(f"training series have different channel counts {sorted(widths)}; every row needs the same channels")
            self.channels = widths.pop()
            self.length = self.options.length or max(v.shape[1] for v in values)
            if self.options.standardize:
                # streaming sums per channel: no concatenation of the whole split
                total = sum(v.shape[1] for v in values)
                s = sum(v.sum(axis=1, dtype=np.float64) for v in values)
                ss = sum((v.astype(np.float64) ** 2).sum(axis=1) for v in values)
                mean = s / total
                std = np.sqrt(np.maximum(ss / total - mean**2, 0.0))
                self.mean, self.std = mean.tolist(), np.where(std > 1e-8, std, 1.0).tolist()
        self.fitted = True

    def encode(self, value: np.ndarray) -> np.ndarray:
        if value.shape[0] != self.channels:
            raise DataError(f"expected {self.channels} channels, got {value.shape[0]}")
        x = value.astype(np.float32)
        if self.mean:
            x = (x - np.asarray(self.mean, np.float32)[:, None]) / np.asarray(self.std, np.float32)[:, None]
        out = np.zeros((self.channels, self.length), np.float32)
        steps = min(self.length, x.shape[1])
        out[:, :steps] = x[:, :steps]
        return out

    def empty(self) -> np.ndarray:
        return np.zeros((self.channels, self.length), np.float32)

    def encoder_info(self) -> dict[str, Any]:
        return {"channels": self.channels, "length": self.length}

    def state_dict(self) -> dict[str, Any]:
        return {"channels": self.channels, "length": self.length, "mean": self.mean, "std": self.std}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.channels, self.length = int(state["channels"]), int(state["length"])
        self.mean, self.std = list(state["mean"]), list(state["std"])
        self.fitted = True

    def schema(self) -> dict[str, Any]:
        one = len(self.config.columns) == 1
        shape = f"{self.channels} lists of numbers (channels × steps)" if one else "an object of column → list of numbers"
        return {**super().schema(), "type": shape, "channels": self.channels, "length": self.length}

    request_schema_exact = False  # equal channel lengths are not stated

    def request_schema(self) -> dict[str, Any]:
        series = {"type": "array", "items": NUMBER_SCHEMA, "minItems": 1}
        if len(self.config.columns) > 1:
            return object_schemas(self.config.columns, {c: series for c in self.config.columns}, {})[0]
        return {"type": "array", "items": series, "minItems": self.channels, "maxItems": self.channels}

    def request_cells(self, value: Any, field: str) -> tuple:
        columns = self.config.columns
        if len(columns) > 1:
            value = column_object(columns, value, field, "column → series")
            cells = []
            for c in columns:
                series = value.get(c)
                if not isinstance(series, list) or not series or not finite_numbers(series):
                    raise RequestError(f"{field}.{c}", "expected a non-empty list of finite numbers")
                cells.append(np.asarray(series, np.float32))
            return tuple(cells)
        if not isinstance(value, list) or not value:
            raise RequestError(field, f"expected a list of {self.channels} series, got {type(value).__name__}", "a list of lists of numbers")
        rows = value if isinstance(value[0], list) else [value]
        for i, row in enumerate(rows):
            if not isinstance(row, list) or not row or not finite_numbers(row):
                raise RequestError(f"{field}[{i}]", "expected a non-empty list of finite numbers")
        if len({len(r) for r in rows}) > 1:
            raise RequestError(field, "the channels have different lengths")
        if len(rows) != self.channels:
            raise RequestError(field, f"expected {self.channels} channels, got {len(rows)}", f"{self.channels} lists of numbers")
        return (np.asarray(rows, np.float32),)


def _as_array(cell: Any, base_dir: Path | None) -> np.ndarray:
    """One cell → float32 [channels, steps]."""
    if isinstance(cell, np.ndarray) or isinstance(cell, (list, tuple)):
        array = np.asarray(cell, dtype=np.float32) if not isinstance(cell, np.ndarray) or cell.dtype != object else np.stack(cell).astype(np.float32)
    elif isinstance(cell, str):
        text = cell.strip()
        if text.startswith("["):
            try:
                array = np.asarray(json.loads(text), dtype=np.float32)
            except (ValueError, TypeError):
                raise DataError(f"not a JSON array of numbers: {text[:60]!r}") from None
        else:
            array = _read_file(resolve_path(text, base_dir))
    else:
        raise DataError(f"expected a series (list of numbers), an array or a file path, got {type(cell).__name__}")
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[1] == 0:
        raise DataError(f"expected a channels × steps array, got shape {array.shape}")
    return array


def _read_file(path: Path) -> np.ndarray:
    if not path.exists():
        raise DataError("file not found", file=path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False).astype(np.float32)
        if suffix == ".ts":
            cases, _ = read_ts(path)
            if len(cases) != 1:
                raise DataError(f"a .ts cell file must hold one case, it holds {len(cases)}", file=path)
            return cases[0]
        if suffix in (".csv", ".txt"):
            return np.loadtxt(path, delimiter="," if suffix == ".csv" else None, dtype=np.float32, ndmin=2)
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read the series ({err})", file=path) from None
    raise DataError(f"unsupported series file {suffix!r}; use .npy, .csv, .txt or .ts", file=path)


def read_ts(path: str | Path) -> tuple[list[np.ndarray], list[Optional[str]]]:
    """Cases ([channels, steps] float32 each) and class labels of a UEA/sktime ``.ts`` file.

    Header lines start with ``@`` or ``#``; each data line holds the channels separated by ``:``
    (values by ``,``), then the label when ``@classLabel true``. Errors name the file and line.
    """
    path = Path(path)
    cases: list[np.ndarray] = []
    labels: list[Optional[str]] = []
    has_labels, in_data = False, False
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read the .ts file ({err})", file=path) from None
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            key, _, rest = line[1:].partition(" ")
            if key.lower() == "classlabel":
                has_labels = rest.strip().lower().startswith("true")
            if key.lower() == "data":
                in_data = True
            continue
        if not in_data:
            raise DataError(f"line {number}: data before the @data line", file=path)
        parts = line.split(":")
        label = parts.pop().strip() if has_labels else None
        try:
            channels = [np.asarray([float(v) for v in p.split(",")], np.float32) for p in parts]
        except ValueError as err:
            raise DataError(f"line {number}: {err}", file=path) from None
        if not channels or len({len(c) for c in channels}) > 1:
            raise DataError(f"line {number}: the channels have different lengths or none", file=path)
        cases.append(np.stack(channels))
        labels.append(label)
    if not cases:
        raise DataError("no data lines (expected an @data section)", file=path)
    return cases, labels
