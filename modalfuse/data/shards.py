"""On-disk arrays for out-of-core data: rows appended once, read back by row number.

Each array is a raw little-endian file (``np.memmap(path, dtype, mode="r", shape=...)`` opens it) plus a
JSON file with its dtype and shape, written last so that a half-written array is never taken for a
whole one. Rows are read with ``os.pread`` rather than through a memory map: the pages then sit in the
kernel's page cache, shared by every worker process, and never count towards a process's resident
memory, so training on a table many times the size of RAM keeps a flat memory footprint.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

import numpy as np


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
        self._fd: int | None = None
        self._pid = -1

    @staticmethod
    def complete(path: Path) -> bool:
        return Path(path).with_suffix(".json").is_file() and Path(path).is_file()

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self.row_bytes

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # each (forked) worker opens its own descriptor
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        return self._fd

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The rows ``rows`` (in that order); runs of consecutive rows are read with one call."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        out = np.empty((len(rows), *self.row_shape), dtype=self.dtype)
        if not len(rows):
            return out
        buf = out.reshape(len(rows), -1).view(np.uint8)
        fd, size = self._file(), self.row_bytes
        order = np.argsort(rows, kind="stable")
        sorted_rows = rows[order]
        start = 0
        while start < len(rows):  # one read per run of consecutive rows in sorted order
            end = start + 1
            while end < len(rows) and sorted_rows[end] == sorted_rows[end - 1] + 1:
                end += 1
            data = os.pread(fd, size * (end - start), int(sorted_rows[start]) * size)
            block = np.frombuffer(data, dtype=np.uint8).reshape(end - start, -1) if size else None
            if block is not None:
                buf[order[start:end]] = block
            start = end
        return out

    def blocks(self, size: int = 4096) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, rows) in order, ``size`` rows at a time."""
        for start in range(0, len(self), size):
            yield start, self.take(np.arange(start, min(len(self), start + size)))

    def __getstate__(self) -> dict:
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])

    def __del__(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            try:
                os.close(self._fd)
            except OSError:
                pass
