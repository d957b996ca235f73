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
    """Append rows of one shape and dtype to ``path``; ``close()`` writes the metadata that makes it readable."""

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.path, self.shape, self.dtype = Path(path), tuple(int(s) for s in shape), np.dtype(dtype)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "wb")
        self.rows = 0

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.shape:
            raise ValueError(f"shard {self.path.name}: rows of shape {rows.shape[1:]}, expected {self.shape}")
        self._fh.write(rows.tobytes())
        self.rows += len(rows)

    def close(self) -> "ShardArray":
        self._fh.close()
        meta = {"dtype": self.dtype.str, "shape": [self.rows, *self.shape]}
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, self.path.with_suffix(".json"))
        return ShardArray(self.path)


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
