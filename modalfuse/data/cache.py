"""On-disk cache of decoded modality values, keyed by content and decoding options.

Only file-backed kinds (images, audio) are cached: their decoding dominates start-up time.
Each entry is a safetensors file (stacked arrays + presence) and a JSON file of row errors.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from ..errors import ConfigError, DataError
from ..kinds.base import is_missing, resolve_path

CACHE_VERSION = 2  # 2: the table's folder is part of the key


def default_cache_dir() -> Path:
    root = os.environ.get("MODALFUSE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "modalfuse"
    )
    return Path(root) / "features"


class ContentHasher:
    """SHA-256 over decoding options and cells, fed chunk by chunk; file cells are hashed by their bytes."""

    def __init__(self, kind: str, options: dict[str, Any], base_dir: Path | None) -> None:
        self.base_dir = base_dir
        self.h = hashlib.sha256(json.dumps([CACHE_VERSION, kind, options, str(base_dir) if base_dir else None], sort_keys=True, default=str).encode())

    def update(self, cells: list[tuple]) -> None:
        h = self.h
        for row in cells:
            for cell in row:
                if isinstance(cell, np.ndarray):
                    h.update(b"A" + str(cell.shape).encode() + str(cell.dtype).encode() + np.ascontiguousarray(cell).tobytes())
                elif is_missing(cell):
                    h.update(b"M")
                elif isinstance(cell, (bytes, bytearray)):
                    h.update(b"B" + hashlib.sha256(cell).digest())
                else:
                    path = resolve_path(cell, self.base_dir)
                    h.update(b"F" + str(cell).encode())
                    if path.is_file():
                        h.update(hashlib.sha256(path.read_bytes()).digest())
            h.update(b"|")

    def hexdigest(self) -> str:
        return self.h.hexdigest()


def content_key(kind: str, options: dict[str, Any], cells: list[tuple], base_dir: Path | None) -> str:
    """SHA-256 over the decoding options and every cell, with file cells hashed by their bytes."""
    hasher = ContentHasher(kind, options, base_dir)
    hasher.update(cells)
    return hasher.hexdigest()


class FeatureCache:
    def __init__(self, folder: Path | None) -> None:
        self.folder = Path(folder) if folder else default_cache_dir()

    def load(self, key: str) -> tuple[list[np.ndarray | None], dict[int, DataError]] | None:
        tensors, meta = self.folder / f"{key}.safetensors", self.folder / f"{key}.json"
        if not (tensors.exists() and meta.exists()):
            return None
        try:
            arrays = load_file(str(tensors))
            info = json.loads(meta.read_text())
            present = arrays["present"].astype(bool)
            values = arrays["values"]
            if len(values) != len(present) or not isinstance(info.get("errors"), dict):
                raise ValueError("entry lengths disagree")
        except Exception as err:  # a truncated or damaged entry: report it, drop it, decode again
            print(f"warning: feature cache entry {tensors} is damaged ({str(err).splitlines()[0][:120]}); rebuilding it", file=sys.stderr)
            for f in (tensors, meta):
                f.unlink(missing_ok=True)
            return None
        out: list[np.ndarray | None] = [values[i] if present[i] else None for i in range(len(present))]
        return out, {int(k): DataError(e["reason"], column=e["column"], file=e["file"]) for k, e in info["errors"].items()}

    def save(self, key: str, values: list[np.ndarray | None], errors: dict[int, DataError], empty: np.ndarray) -> None:
        try:
            self._save(key, values, errors, empty)
        except OSError as err:
            raise ConfigError(f"data.cache_dir: cannot write the feature cache in {self.folder} ({err.strerror or err}); "
                              f"give a writable folder, or cache_dir: none") from None

    def _save(self, key: str, values: list[np.ndarray | None], errors: dict[int, DataError], empty: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        stacked = np.stack([v if v is not None else empty for v in values]) if values else empty[None][:0]
        present = np.asarray([v is not None for v in values], dtype=np.uint8)
        tmp = self.folder / f"{key}.tmp-{os.getpid()}"
        save_file({"values": np.ascontiguousarray(stacked), "present": present}, str(tmp))
        (self.folder / f"{key}.json").write_text(json.dumps({"errors": {i: {"reason": e.reason, "column": e.column, "file": e.file} for i, e in errors.items()}}))
        os.replace(tmp, self.folder / f"{key}.safetensors")
