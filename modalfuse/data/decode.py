"""Decode cells in worker processes: image and audio files are read and resized by ``workers`` processes.

The preprocessors reach each worker once (pickled at start); cells go out in batches, in order, so the values and
errors are the same whatever the number of workers. Values come back, or (``to_shard``) the worker writes them
into their rows of a disk shard itself and only which cells held a value comes back: the calling process then
neither unpickles nor copies the decoded arrays, and stays out of the way of the workers on the cores.
"""
from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np

from ..errors import DataError
from ..kinds import Preprocessor
from .shards import ShardWriter, write_rows

_BATCH = 64
_STATE: dict[str, Any] = {}


def _decode_batch(job: tuple[str, list[tuple], bool, Optional[Path]]) -> list[tuple[Any, Optional[tuple]]]:
    name, cells, compact, base = job
    return decode_cells(_STATE["pres"][name], cells, base, compact)


def _decode_to_shard(job: tuple[str, list[tuple], Optional[Path], Path, int]) -> list[tuple[bool, Optional[tuple]]]:
    name, cells, base, path, first = job
    return decode_into(_STATE["pres"][name], cells, base, path, first)


def _context(preprocessors: Iterable[Preprocessor] = ()):
    """forkserver where there is one: workers fork from a small server process (torch, the kinds and the modules
    they declare in ``worker_imports`` imported once), not from the caller, whose whole resident set (a trained
    model, say) each forked worker would count again."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["modalfuse.data.decode", *sorted({m for p in preprocessors for m in p.worker_imports})])
        return ctx
    return multiprocessing.get_context("spawn")


def decode_cells(pre: Preprocessor, cells: list[tuple], base_dir: Optional[Path], compact: bool) -> list[tuple[Any, Optional[tuple]]]:
    """(value or None, error as (reason, column, file) or None) per cell; ``compact``: values in their stored form."""
    out = []
    for row in cells:
        try:
            value = pre.decode(row, base_dir)
            out.append((pre.compact(value) if compact and value is not None else value, None))
        except DataError as err:
            out.append((None, (err.reason, err.column, err.file)))
    return out


def decode_into(pre: Preprocessor, cells: list[tuple], base_dir: Optional[Path], path: Path, first: int) -> list[tuple[bool, Optional[tuple]]]:
    """Decode ``cells`` in stored form into rows ``first``.. of the shard at ``path`` (zeros where a cell holds no
    value); (whether it held one, error or None) per cell."""
    out = decode_cells(pre, cells, base_dir, compact=True)
    shape, dtype = pre.stored()
    rows = np.zeros((len(out), *shape), dtype)
    for i, (value, _) in enumerate(out):
        if value is not None:
            rows[i] = value
    write_rows(path, first, rows, shape, dtype)
    return [(value is not None, err) for value, err in out]


def _init(pres: dict[str, Preprocessor], base: Optional[Path]) -> None:
    import torch

    torch.set_num_threads(1)  # one process per core: no intra-op threads fighting over them
    _STATE["pres"], _STATE["base"] = pres, base


class Decoder:
    """``decode(name, cells)`` → (values, {position: DataError}); ``workers`` = 0 decodes in this process."""

    def __init__(self, preprocessors: dict[str, Preprocessor], base_dir: Optional[Path], workers: int = 0) -> None:
        self.preprocessors, self.base_dir = preprocessors, base_dir
        self.workers = workers
        self._pool = None

    def __enter__(self) -> "Decoder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
            if self.decoded >= _STOP_SERVER_AFTER:
                _stop_forkserver()

    decoded = 0

    def decode(self, name: str, cells: list[tuple], compact: bool = False) -> tuple[list, dict[int, DataError]]:
        values, errors = [], {}
        for start, batch, errs in self.batches(name, cells, compact):
            values += batch
            errors.update({start + k: e for k, e in errs.items()})
        return values, errors

    def batches(self, name: str, cells: list[tuple], compact: bool = False):
        """(first position, values, {position in batch: DataError}) batch by batch, in order: a caller that writes
        each batch away holds a few batches of decoded values, never a whole chunk."""
        pre = self.preprocessors[name]
        jobs = [(name, cells[i:i + _BATCH], compact, self.base_dir) for i in range(0, len(cells), _BATCH)]
        return self._run(pre, cells, _decode_batch, jobs, lambda job: decode_cells(pre, job[1], job[3], job[2]))

    def to_shard(self, name: str, cells: list[tuple], writer: ShardWriter):
        """Decode ``cells`` into the next ``len(cells)`` rows of ``writer``'s shard (workers write their rows
        themselves); yields (first position, [whether the cell held a value], {position in batch: DataError})."""
        pre, first = self.preprocessors[name], writer.reserve(len(cells))
        jobs = [(name, cells[i:i + _BATCH], self.base_dir, writer.path, first + i) for i in range(0, len(cells), _BATCH)]
        return self._run(pre, cells, _decode_to_shard, jobs, lambda job: decode_into(pre, *job[1:]))

    def _run(self, pre: Preprocessor, cells: list[tuple], remote, jobs: list[tuple], local):
        """The jobs go to the workers at once (a caller may queue another modality's before reading these results,
        so that the workers never wait between the two); results are read in order."""
        if self.workers > 0 and len(cells) > _BATCH and pre.file_cells and _names_files(cells):
            if self._pool is None:
                self._pool = _context(self.preprocessors.values()).Pool(
                    self.workers, initializer=_init, initargs=(self.preprocessors, self.base_dir))
            self.decoded += len(cells)
            return _in_order(self._pool.imap(remote, jobs))
        return _in_order(map(local, jobs))


def _in_order(results):
    for k, batch in enumerate(results):
        errs = {i: DataError(e[0], column=e[1], file=e[2]) for i, (_, e) in enumerate(batch) if e is not None}
        yield k * _BATCH, [v for v, _ in batch], errs


#: after decoding this many cells the fork server is stopped (its start-up, a few seconds, is small beside such a
#: pass, and it holds torch's ~0.4 GB while idle); after smaller passes it stays, so the next pool starts at once
_STOP_SERVER_AFTER = 20000


def _stop_forkserver() -> None:
    try:
        from multiprocessing import forkserver

        forkserver._forkserver._stop()  # private, but the only way to end it; restarted on next use
    except (AttributeError, ImportError, OSError):  # pragma: no cover
        pass


def default_workers() -> int:
    """Decoding workers when unset: one per core the process may use, up to 4, none on a single core."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return 0 if cores < 2 else min(cores, 4)


def _names_files(cells: list[tuple]) -> bool:
    """Whether cells of a file kind are file paths or bytes (worth a worker); arrays already in memory decode faster here."""
    first = next((c for row in cells for c in row if isinstance(c, (str, bytes, bytearray)) and c), None)
    return first is not None


def release_memory() -> None:
    """Hand freed heap memory back to the system (glibc ``malloc_trim``): after a pass over many mid-sized arrays
    the heap keeps their pages, which would otherwise count as resident for the rest of the run. Only the young
    garbage generations are collected first: what the pass left in cycles is young, and a full collection walks
    every object of the process (torch's and pandas' included, ~0.07 s), on every featurize call."""
    import ctypes
    import gc

    gc.collect(1)
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass
