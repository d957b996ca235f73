"""Turn a table into tensors: decode (cached), fit on train, encode, with a reconciled skip report."""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..errors import DataError
from .readers import UNDECODABLE
from .batch import Batch
from .cache import FeatureCache, content_key
from .entities import Indexed
from ..kinds.sparse import SparseRows
from ..kinds import Preprocessor
from .target import TargetEncoder


def show_progress(wanted: bool) -> bool:
    """Progress bars go to stderr, and only to a terminal (MODALFUSE_PROGRESS=1 forces them)."""
    import os
    import sys

    return bool(wanted) and (sys.stderr.isatty() or bool(os.environ.get("MODALFUSE_PROGRESS")))


@dataclass
class SkipReport:
    """Rows read = rows used + rows skipped; every skipped row keeps its reason."""

    table: Optional[str]
    rows_read: int
    rows_used: int
    skipped: list[DataError] = field(default_factory=list)
    missing: dict[str, int] = field(default_factory=dict)
    #: cells of used rows that were filled in or mapped rather than read: modality → {what: count}
    imputed: dict[str, dict[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rows_read != self.rows_used + len(self.skipped):
            raise RuntimeError(f"skip report does not reconcile: {self.rows_read} read != {self.rows_used} used + {len(self.skipped)} skipped")

    def summary(self) -> str:
        text = f"{self.table + ': ' if self.table else ''}{self.rows_read} rows read, {self.rows_used} used, {len(self.skipped)} skipped"
        if self.missing:
            text += "; missing per modality: " + ", ".join(f"{k} {v}" for k, v in self.missing.items())
        for name, counts in self.imputed.items():
            text += f"; {name}: " + ", ".join(f"{v} {k}" for k, v in counts.items())
        return text

    def to_dict(self) -> dict:
        return {
            "table": self.table,
            "rows_read": self.rows_read,
            "rows_used": self.rows_used,
            "rows_skipped": len(self.skipped),
            "missing": self.missing,
            "imputed": self.imputed,
            "skipped": [{"row": e.row, "column": e.column, "file": e.file, "reason": e.reason} for e in self.skipped],
        }

    def write(self, folder: Path, name: str) -> None:
        """Write ``{name}_report.json`` and, when rows were skipped, ``{name}_skipped.csv``."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}_report.json").write_text(json.dumps(self.to_dict(), indent=2, default=str))
        if self.skipped:
            with open(folder / f"{name}_skipped.csv", "w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(["row", "column", "file", "reason"])
                for e in self.skipped:
                    writer.writerow([e.row, e.column, e.file, e.reason])


@dataclass
class Features(torch.utils.data.Dataset):
    """Encoded modalities for the rows kept; indexed by a list of positions, it returns a Batch."""

    inputs: dict[str, Union[torch.Tensor, Indexed]]
    masks: dict[str, torch.Tensor]
    target: Optional[torch.Tensor]
    rows: list
    report: SkipReport
    #: train-time augmentation (modality name → function of a batch's values and a generator); set on training features
    augment: Optional[dict] = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.rows)

    def custom_loader(self, batch_size: int, shuffle: bool, seed: int = 0, workers: int = 0):
        """A loader that augments batches with seeded draws (in ``workers`` processes), when augmentation is on;
        None: the plain batches do."""
        if not self.augment:
            return None
        from .loader import make_loader

        return make_loader(self, batch_size, shuffle, seed, workers if shuffle else 0, self.augment)

    def __getitem__(self, index) -> Batch:
        idx = torch.as_tensor(index, dtype=torch.long)
        return Batch(
            {k: v.batch(idx) if isinstance(v, (Indexed, SparseRows)) else v[idx] for k, v in self.inputs.items()},
            {k: v[idx] for k, v in self.masks.items()},
            None if self.target is None else self.target[idx],
            idx,
        )

    def expanded(self) -> "Features":
        """The same rows with de-duplicated tensor modalities stored row by row (for code that edits inputs per row); graphs stay indexed."""
        inputs = {k: v.dense() if isinstance(v, Indexed) and isinstance(v.values, torch.Tensor) else v for k, v in self.inputs.items()}
        return Features(inputs, self.masks, self.target, self.rows, self.report)

    def subset(self, positions: np.ndarray) -> "Features":
        idx = torch.as_tensor(positions, dtype=torch.long)
        report = SkipReport(self.report.table, len(idx), len(idx))
        return Features(
            {k: v.rows(idx) if isinstance(v, (Indexed, SparseRows)) else v[idx] for k, v in self.inputs.items()},
            {k: v[idx] for k, v in self.masks.items()},
            None if self.target is None else self.target[idx],
            [self.rows[i] for i in positions],
            report,
        )


def _decode_column(
    pre: Preprocessor,
    cells: list[tuple],
    base_dir: Optional[Path],
    cache: Optional[FeatureCache],
    progress: bool,
    workers: int = 0,
) -> tuple[list, dict[int, DataError]]:
    key = None
    if pre.cacheable and cache is not None:
        key = content_key(pre.kind, pre.decode_key(), cells, base_dir)
        hit = cache.load(key)
        if hit is not None:
            return hit
    if workers > 0 and pre.file_cells and len(cells) > 256:  # files decoded by worker processes (arrays stay here)
        from .decode import Decoder

        with Decoder({pre.config.name: pre}, base_dir, workers) as decoder:
            values, errors = decoder.decode(pre.config.name, cells)
        if key is not None:
            cache.save(key, values, errors, pre.empty())
        return values, errors
    values: list = []
    errors: dict[int, DataError] = {}
    iterator = tqdm(cells, desc=f"decode {pre.config.name}", disable=not show_progress(progress) or len(cells) < 500, leave=False)
    for i, row in enumerate(iterator):
        try:
            values.append(pre.decode(row, base_dir))
        except DataError as err:
            values.append(None)
            errors[i] = err
    if key is not None:
        cache.save(key, values, errors, pre.empty())
    return values, errors


def _distinct(cells: list[tuple]) -> tuple[list[tuple], np.ndarray]:
    """The distinct cells and, per row, the position of its cell; rows of unhashable cells (arrays) stay apart."""
    first: dict = {}
    unique: list[tuple] = []
    inverse = np.empty(len(cells), dtype=np.int64)
    for i, cell in enumerate(cells):
        try:
            j = first.setdefault(cell, len(unique))
        except TypeError:
            j = len(unique)
        if j == len(unique):
            unique.append(cell)
        inverse[i] = j
    return unique, inverse


def _dedupe(pre: Preprocessor, n_distinct: int, n_rows: int) -> bool:
    """Store distinct values once when asked, when values cannot be stacked (graphs), or when they repeat (auto)."""
    if pre.indexed:
        return True
    choice = pre.config.dedupe
    return choice if choice is not None else n_rows >= 2 * max(n_distinct, 1)


def featurize(
    frame: pd.DataFrame,
    preprocessors: dict[str, Preprocessor],
    target_encoder: Optional[TargetEncoder],
    target: Optional[str],
    *,
    fit: bool = False,
    table: Optional[str] = None,
    base_dir: Optional[Path] = None,
    on_error: str = "raise",
    cache: Optional[FeatureCache] = None,
    progress: bool = False,
    workers: int = 0,
) -> Features:
    """Decode every modality of ``frame``, fit preprocessors when ``fit``, encode, and mask.

    With ``on_error="raise"`` the first bad row (in table order) raises a DataError naming
    the table, row and column; with ``"skip"`` bad rows are dropped and listed in the report.
    """
    rows = list(frame.index)
    n = len(rows)
    errors: dict[int, DataError] = {}
    undecodable = frame.attrs.get(UNDECODABLE) or {}
    for i, label in enumerate(rows) if undecodable else ():
        if label in undecodable:
            column, reason = undecodable[label]
            errors[i] = DataError(reason, row=label, column=column, table=table)
    distinct: dict[str, list] = {}
    inverse: dict[str, np.ndarray] = {}
    for name, pre in preprocessors.items():
        missing_cols = [c for c in pre.config.columns if c not in frame.columns]
        if missing_cols:
            raise DataError(
                f"modality {name!r} needs columns {missing_cols}, which the table lacks (it has {list(frame.columns)[:20]})",
                table=table,
            )
        cells = list(zip(*(frame[c].tolist() for c in pre.config.columns))) if n else []
        unique_cells, inverse[name] = _distinct(cells)
        distinct[name], errs = _decode_column(pre, unique_cells, base_dir, cache, progress, workers)
        for i in np.flatnonzero(np.isin(inverse[name], list(errs))) if errs else ():
            errors.setdefault(int(i), errs[inverse[name][i]].located(row=rows[i], column=", ".join(pre.config.columns), table=table))
    decoded = {name: [distinct[name][j] for j in inverse[name]] for name in preprocessors}

    targets = np.zeros(n, dtype=np.float32)
    if target is not None and target_encoder is not None:
        if target not in frame.columns:
            raise DataError(f"the target column {target!r} is not in the table", table=table)
        if fit:
            target_encoder.fit(frame[target])
        for i, value in enumerate(frame[target].tolist()):
            try:
                targets[i] = target_encoder.encode(value)
            except DataError as err:
                errors.setdefault(i, err.located(row=rows[i], column=target, table=table))

    for i in range(n):
        if i not in errors and all(decoded[m][i] is None for m in preprocessors):
            errors[i] = DataError("no modality is present in this row", row=rows[i], table=table)

    if fit:
        for name, pre in preprocessors.items():
            pre.fit([v for i, v in enumerate(decoded[name]) if v is not None and i not in errors])

    encoded: dict[str, dict[int, np.ndarray]] = {}
    for name, pre in preprocessors.items():
        encoded[name] = {}
        for i in range(n):
            j = int(inverse[name][i])
            if i in errors or decoded[name][i] is None or j in encoded[name]:
                continue
            try:
                encoded[name][j] = pre.encode(decoded[name][i])
            except DataError as err:
                for k in np.flatnonzero(inverse[name] == j):
                    errors.setdefault(int(k), err.located(row=rows[k], column=", ".join(pre.config.columns), table=table))

    if errors and on_error == "raise":
        first = errors[min(errors)]
        hint = " (set data.on_error: skip to drop bad rows and report them)"
        raise DataError(first.reason + hint, row=first.row, column=first.column, table=first.table, file=first.file)

    keep = [i for i in range(n) if i not in errors]
    inputs, masks, missing = {}, {}, {}
    for name, pre in preprocessors.items():
        present = np.array([int(inverse[name][i]) in encoded[name] for i in keep], dtype=bool)
        ids = inverse[name][keep] if keep else np.zeros(0, dtype=np.int64)
        if _dedupe(pre, len(encoded[name]), len(keep)):
            used = sorted({int(j) for j, p in zip(ids, present) if p})
            position = {j: k for k, j in enumerate(used)}
            index = torch.tensor([position[int(j)] if p else -1 for j, p in zip(ids, present)], dtype=torch.long)
            inputs[name] = Indexed(pre.stack([encoded[name][j] for j in used]), index)
        else:
            empty = pre.empty()
            inputs[name] = pre.stack([encoded[name][int(j)] if p else empty for j, p in zip(ids, present)])
        masks[name] = torch.from_numpy(present)
        missing[name] = int((~present).sum())
    imputed = {}
    for name, pre in preprocessors.items():
        counts = pre.imputed([decoded[name][i] for i in keep if decoded[name][i] is not None])
        if any(counts.values()):
            imputed[name] = {k: v for k, v in counts.items() if v}
    report = SkipReport(table, n, len(keep), [errors[i] for i in sorted(errors)], missing, imputed)
    target_tensor = None
    if target is not None and target_encoder is not None:
        dtype = torch.long if target_encoder.task == "classification" else torch.float32
        target_tensor = torch.from_numpy(targets[keep]).to(dtype)
    return Features(inputs, masks, target_tensor, [rows[i] for i in keep], report)
