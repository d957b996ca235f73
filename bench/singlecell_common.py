"""Helpers of the single-cell benchmarks: the data sets as cell frames / AnnData, a peak-memory meter, report header."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common import command_line, machine_info


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Meter:
    """Wall time and peak resident memory above the start (sampled every 50 ms) of a ``with`` block."""

    def __enter__(self) -> "Meter":
        self.start_rss, self.peak, self._stop = rss_mib(), rss_mib(), False
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        self.t0 = time.perf_counter()
        return self

    def _watch(self) -> None:
        while not self._stop:
            self.peak = max(self.peak, rss_mib())
            time.sleep(0.05)

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self.t0
        self._stop = True
        self._thread.join()
        self.peak = max(self.peak, rss_mib())
        self.peak_mib = self.peak - self.start_rss


def teaseq(data_dir: str):
    """(paired frame: rna, adt, celltype for 1,262 cells; protein-only frame: adt, celltype, rna=None for 5,048)."""
    from modalfuse.data.singlecell import read_cells

    d = Path(data_dir) / "citeseq_teaseq_matilda"
    paired, _ = read_cells({"rna": d / "train_rna.h5", "adt": d / "train_adt.h5"})
    paired["celltype"] = pd.read_csv(d / "train_cty.csv")["x"].astype(str).to_numpy()
    prot, _ = read_cells({"adt": d / "test_adt.h5"})
    prot["celltype"] = pd.read_csv(d / "test_cty.csv")["x"].astype(str).to_numpy()
    prot.insert(0, "rna", None)
    return paired, prot


def dense(column: pd.Series) -> np.ndarray:
    """A frame's counts column (all cells present) as a dense [cells, features] array."""
    return np.stack([c.dense() for c in column])


def header(title: str, threads: int, load0: tuple, started: str, seeds: Any, notes: list[str]) -> list[str]:
    info = machine_info(threads)
    load1 = os.getloadavg()
    return [
        f"# {title}", "",
        f"- date: {started}",
        f"- machine: {info['cores']} cores ({info['cpu']}), Python {info['python']}, torch {info['torch']} ({threads} thread), {info['platform']}",
        f"- load average (1/5/15 min) at start: {' / '.join(f'{x:.2f}' for x in load0)}; at end: {' / '.join(f'{x:.2f}' for x in load1)}",
        f"- command: `{command_line()}`",
        f"- seeds: {seeds}",
        *[f"- {n}" for n in notes], "",
    ]
