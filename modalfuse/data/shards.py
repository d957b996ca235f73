"""On-disk arrays for out-of-core data: rows appended once, read back by row number through a memory map.

Each array is a raw little-endian file (``np.memmap(path, dtype, mode="r", shape=...)`` opens it too) plus a
JSON file with its dtype and shape, written last so that a half-written array is never taken for a whole one.
Rows are gathered by fancy indexing a read-only memory map. Pages of a file mapping count in a process's
resident set while mapped, so after every ``RELEASE_BYTES`` or so of rows gathered the mapping's pages are
released (``madvise(MADV_DONTNEED)``): they stay in the kernel's page cache, shared by every worker process,
and a process's resident memory stays flat however large the shards are.
"""
from __future__ import annotations

import json
import mmap
import os
from pathlib import Path
from typing import Iterator

import numpy as np

#: bytes of rows gathered (counted at least 64 KiB a row: the kernel maps pages around each fault) between releases
RELEASE_BYTES = 16 << 20


class ShardWriter:
    """Rows of one shape and dtype in ``path``, each written at its row's offset, so that several processes (decode
    workers) can write the rows they were given; ``close()`` writes the metadata that makes the array readable."""

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.path, self.shape, self.dtype = Path(path), tuple(int(s) for s in shape), np.dtype(dtype)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_bytes(b"")
        self.rows = 0

    def reserve(self, n: int) -> int:
        """Room for ``n`` more rows; returns the first one's row number (for ``write_rows``)."""
        first, self.rows = self.rows, self.rows + n
        return first

    def append(self, rows: np.ndarray) -> None:
        write_rows(self.path, self.reserve(len(rows)), rows, self.shape, self.dtype)

    def close(self) -> "ShardArray":
        size = self.rows * int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        if self.path.stat().st_size != size:
            raise ValueError(f"shard {self.path.name}: {self.path.stat().st_size} bytes written, expected {size} ({self.rows} rows)")
        meta = {"dtype": self.dtype.str, "shape": [self.rows, *self.shape]}
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, self.path.with_suffix(".json"))
        return ShardArray(self.path)


def write_rows(path: Path, first: int, rows: np.ndarray, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Write ``rows`` into the shard file ``path`` from row ``first`` on (any process may call it)."""
    rows = np.ascontiguousarray(rows, dtype=dtype)
    if rows.shape[1:] != tuple(shape):
        raise ValueError(f"shard {Path(path).name}: rows of shape {rows.shape[1:]}, expected {tuple(shape)}")
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, rows.tobytes(), first * int(np.prod(shape, dtype=np.int64)) * rows.dtype.itemsize)
    finally:
        os.close(fd)


class ShardArray:
    """A read-only on-disk array [rows, ...]; ``take`` gathers rows, ``blocks`` streams it in order."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        meta = json.loads(self.path.with_suffix(".json").read_text())
        self.dtype = np.dtype(meta["dtype"])
        self.shape = tuple(meta["shape"])
        self.row_shape = self.shape[1:]
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize
        if self.path.stat().st_size != self.shape[0] * self.row_bytes:
            raise ValueError(f"shard {self.path} holds {self.path.stat().st_size} bytes, expected {self.shape[0] * self.row_bytes}")
        self._array: np.ndarray | None = None
        self._map: mmap.mmap | None = None
        self._pid = -1
        self._touched = 0

    @staticmethod
    def complete(path: Path) -> bool:
        return Path(path).with_suffix(".json").is_file() and Path(path).is_file()

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self.row_bytes

    def _mapped(self) -> np.ndarray:
        if self._array is None or self._pid != os.getpid():  # each (forked or spawned) worker maps the file itself
            self._pid = os.getpid()
            if self.nbytes == 0:
                self._map, self._array = None, np.zeros(self.shape, dtype=self.dtype)
            else:
                with open(self.path, "rb") as fh:
                    self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
                self._array = np.frombuffer(self._map, dtype=self.dtype).reshape(self.shape)
        return self._array

    def take(self, rows: np.ndarray) -> np.ndarray:
        """A copy of the rows ``rows`` (in that order)."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        out = self._mapped()[rows]
        self._touched += len(rows) * max(self.row_bytes, 1 << 16)
        if self._touched >= RELEASE_BYTES and self._map is not None and hasattr(mmap, "MADV_DONTNEED"):
            self._map.madvise(mmap.MADV_DONTNEED)  # drop this process's mapping of the pages (the page cache keeps them)
            self._touched = 0
        return out

    def blocks(self, size: int = 4096) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, rows) in order, ``size`` rows at a time."""
        for start in range(0, len(self), size):
            yield start, self.take(np.arange(start, min(len(self), start + size)))

    def __getstate__(self) -> dict:
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])
