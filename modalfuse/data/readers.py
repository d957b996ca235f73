"""Read tables (CSV, TSV, Parquet) or in-memory arrays into a DataFrame of cells."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..errors import DataError



def read_table(path: str | Path) -> pd.DataFrame:
    """CSV/TSV/Parquet by extension; empty cells become NaN (a missing modality)."""
    path = Path(path)
    if not path.exists():
        raise DataError("table not found", table=path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt"):
            return pd.read_csv(path)
        if suffix == ".tsv":
            return pd.read_csv(path, sep="\t")
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as err:
        raise DataError(f"cannot read table: {err}", table=path) from None
    raise DataError(f"unsupported table format {suffix!r}; expected .csv, .tsv or .parquet", table=path)


def frame_from_arrays(arrays: Mapping[str, Any]) -> pd.DataFrame:
    """Columns from arrays of equal length; a 2-D+ array becomes one cell per row (an ndarray)."""
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(f"arrays differ in length: {lengths}")
    columns = {}
    for name, value in arrays.items():
        value = np.asarray(value) if not isinstance(value, (list, pd.Series)) else value
        if isinstance(value, np.ndarray) and value.ndim > 1:
            cells = np.empty(len(value), dtype=object)
            cells[:] = list(value)
            columns[name] = cells
        else:
            columns[name] = value
    return pd.DataFrame(columns)


@dataclass
class Table:
    """A frame read from a file (or a chunk of one): its name for messages and the folder its relative paths start from."""

    frame: pd.DataFrame
    name: str | None = None
    base_dir: Path | None = None


def as_frame(data: Any) -> tuple[pd.DataFrame, str | None, Path | None]:
    """(frame, table name for messages, folder that relative file paths resolve against)."""
    if isinstance(data, Table):
        return data.frame, data.name, data.base_dir
    if isinstance(data, pd.DataFrame):
        return data, None, None
    if isinstance(data, (str, Path)):
        path = Path(data)
        return read_table(path), str(path), path.resolve().parent
    if isinstance(data, Mapping):
        return frame_from_arrays(data), None, None
    raise TypeError(f"expected a DataFrame, a table path or a mapping of arrays, got {type(data).__name__}")
