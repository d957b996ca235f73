"""Where features live: ``data.storage`` memory, disk, or auto (disk when the decoded data would not fit a budget)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from ..kinds import Preprocessor
from .readers import Table, count_rows, iter_table


def available_memory() -> int:
    """Bytes of RAM available to new allocations (psutil, else /proc/meminfo, else 8 GB)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 8 << 30


def estimated_rows(data: Any) -> Optional[int]:
    """Rows of a table without reading it whole: Parquet metadata, a frame's length, or a CSV's line count."""
    n = count_rows(data)
    if n is None and isinstance(data, (str, Path)) and Path(data).is_file():
        with open(data, "rb") as fh:
            n = max(0, sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b"")) - 1)
    return n


def decoded_bytes(preprocessors: dict[str, Preprocessor], rows: int) -> int:
    """What the in-memory path would hold: every modality's encoded array (float32 pixels and samples) per row."""
    return rows * sum(int(p.empty().nbytes) for p in preprocessors.values())


def choose_storage(requested: str, data: Any, preprocessors: dict[str, Preprocessor], budget_gb: Optional[float]) -> str:
    """``memory`` or ``disk``; auto picks disk for a table file whose decoded size exceeds the budget."""
    if requested != "auto":
        return requested
    if isinstance(data, Table) or not isinstance(data, (str, Path, pd.DataFrame)):
        return "memory"
    if any(p.indexed or not isinstance(p.empty(), np.ndarray) for p in preprocessors.values()):
        return "memory"  # graphs (value tables) and sparse counts have no fixed-size shards; they stay in memory
    rows = estimated_rows(data)
    budget = budget_gb * (1 << 30) if budget_gb else available_memory() / 4
    return "disk" if rows is not None and decoded_bytes(preprocessors, rows) > budget else "memory"


def target_values(data: Any, target: str, chunk_size: int, na_values) -> tuple[Optional[pd.Series], Optional[str], list]:
    """The target column, read chunk by chunk (for task inference), the table's name, and its columns."""
    values, name, columns = [], None, []
    for chunk in iter_table(data, chunk_size, na_values):
        name, columns = chunk.name, list(chunk.frame.columns)
        if target not in chunk.frame.columns:
            return None, name, columns
        values.append(chunk.frame[target])
    return (pd.concat(values) if values else pd.Series([], dtype=object)), name, columns
