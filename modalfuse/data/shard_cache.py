"""Decoded shards of file kinds (images, audio) cached by content, and preprocessor fitting from a shard.

A cached column is a folder ``<cache>/../shards/<key>/`` holding the shard of slot values (one per distinct
cell, in order of first appearance), and ``slots.json`` with each slot's presence and decode errors. The key
hashes the decoding options and every cell in table order (file cells by their bytes), as the feature cache
does; the folder is written under a temporary name and renamed when complete.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import DataError
from ..kinds import Preprocessor
from .cache import ContentHasher, FeatureCache
from .readers import iter_table
from .shards import ShardArray


def shard_keys(source: Any, preprocessors: dict[str, Preprocessor], names: list[str], chunk_size: int, na_values) -> dict[str, str]:
    """One streaming pass: the content key of each named (file-kind) column."""
    if not names:
        return {}
    hashers: dict[str, ContentHasher] = {}
    for chunk in iter_table(source, chunk_size, na_values):
        for n in names:
            pre = preprocessors[n]
            if n not in hashers:
                hashers[n] = ContentHasher(pre.kind + "/shards", pre.decode_key(), chunk.base_dir)
            if all(c in chunk.frame.columns for c in pre.config.columns):
                hashers[n].update(list(zip(*(chunk.frame[c].tolist() for c in pre.config.columns))))
    return {n: h.hexdigest() for n, h in hashers.items()}


def _root(cache: FeatureCache) -> Path:
    return cache.folder.parent / "shards"


def load_cached(cache: FeatureCache, key: str) -> Optional[tuple[ShardArray, list[bool], dict[int, DataError]]]:
    folder = _root(cache) / key
    try:
        meta = json.loads((folder / "slots.json").read_text())
        array = ShardArray(folder / "values.bin")
        if len(meta["present"]) != len(array):
            raise ValueError("slot count disagrees")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError) as err:
        import sys

        print(f"warning: shard cache entry {folder} is damaged ({str(err)[:120]}); rebuilding it", file=sys.stderr)
        shutil.rmtree(folder, ignore_errors=True)
        return None
    errors = {int(k): DataError(e["reason"], column=e["column"], file=e["file"]) for k, e in meta["errors"].items()}
    return array, [bool(p) for p in meta["present"]], errors


def cache_writer_folder(cache: FeatureCache, key: str) -> Path:
    folder = _root(cache) / f"{key}.tmp-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def save_cached(cache: FeatureCache, key: str, array: ShardArray, present: list[bool], errors: dict[int, DataError]) -> ShardArray:
    """Complete a cache entry written under its temporary name; returns the array at its final place."""
    tmp = array.path.parent
    (tmp / "slots.json").write_text(json.dumps({
        "present": [bool(p) for p in present],
        "errors": {str(i): {"reason": e.reason, "column": e.column, "file": e.file} for i, e in errors.items()},
    }))
    os.replace(array.path, tmp / "values.bin")
    os.replace(array.path.with_suffix(".json"), tmp / "values.json")
    final = _root(cache) / key
    try:
        os.rename(tmp, final)
    except OSError:  # another process completed the same entry first: use theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return ShardArray(final / "values.bin")


def fit_from_shard(pre: Preprocessor, shard: ShardArray, row_slots: np.ndarray, present: np.ndarray, block_bytes: int = 32 << 20) -> None:
    """Streaming fit of a stored kind: each slot's values once, weighted by the number of fitting rows holding it,
    read in blocks of about ``block_bytes``; skipped for kinds that fit nothing."""
    if pre.stateless:
        pre.fit_finish()
        return
    block = max(1, block_bytes // max(shard.row_bytes, 1))
    row_slots = row_slots[(row_slots >= 0)]
    row_slots = row_slots[present[row_slots]] if len(row_slots) else row_slots
    counts = np.bincount(row_slots, minlength=len(shard)) if len(row_slots) else np.zeros(len(shard), np.int64)
    for start in range(0, len(shard), block):
        c = counts[start:start + block]
        used = np.flatnonzero(c)
        if len(used):
            pre.fit_update(pre.expand(shard.take(start + used)), c[used])
    pre.fit_finish()
