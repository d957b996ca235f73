"""Features on disk: per modality a shard of slot values, per kept row its slot, mask and target; batches gathered lazily.

``DiskFeatures`` indexes like the in-memory ``Features`` (a list of positions gives a ``Batch``), so training,
evaluation and prediction take either; its loader gathers training batches in DataLoader worker processes.
"""
from __future__ import annotations

import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..kinds import Preprocessor
from .batch import Batch
from .dataset import Features, SkipReport
from .entities import Indexed
from .shards import ShardArray


@dataclass
class Column:
    """One modality on disk: its shard of slot values, each kept row's slot (-1: missing) and how to encode a batch."""

    values: ShardArray
    slot: np.ndarray
    pre: Preprocessor
    lazy: bool          # the shard holds decoded values in stored form, encoded per batch
    dedupe: bool

    def gather(self, positions: np.ndarray) -> Any:
        slots = self.slot[positions]
        present = slots >= 0
        if not self.dedupe:  # one read per row, missing rows get the placeholder
            if not present.any():
                return torch.from_numpy(np.broadcast_to(self.pre.empty(), (len(slots), *self.pre.empty().shape)).copy())
            raw = self.values.take(np.where(present, slots, slots[present][0]))
            vals = np.ascontiguousarray(self.pre.encode_stored(raw) if self.lazy else raw)
            if not present.all():
                vals[~present] = self.pre.empty()
            return torch.from_numpy(vals)
        used, local = np.unique(slots[present], return_inverse=True)
        raw = self.values.take(used)
        vals = torch.from_numpy(np.ascontiguousarray(self.pre.encode_stored(raw) if self.lazy else raw))
        index = torch.full((len(slots),), -1, dtype=torch.long)
        index[torch.from_numpy(present)] = torch.from_numpy(local.reshape(-1)).long()
        return Indexed(vals, index)


@dataclass
class DiskFeatures(torch.utils.data.Dataset):
    """Rows kept, with per-row masks and targets in memory and modality values in shards; indexed like ``Features``."""

    columns: dict[str, Column]
    masks: dict[str, torch.Tensor]
    target: Optional[torch.Tensor]
    rows: list
    report: SkipReport
    store: Any = None  # keeps the shard folder alive while features use it
    augment: Optional[dict] = None

    def __len__(self) -> int:
        return len(self.rows)

    def custom_loader(self, batch_size: int, shuffle: bool, seed: int = 0, workers: int = 0):
        """Training batches gathered by ``workers`` processes (``train.workers``); validation batches (in order) by this one."""
        from .loader import make_loader

        return make_loader(self, batch_size, shuffle, seed, workers if shuffle else 0, self.augment)

    def __getstate__(self) -> dict:
        """Sent to spawned loader workers without the shard folder's owner (only this process removes it)."""
        return {**self.__dict__, "store": None}

    def __getitem__(self, index) -> Batch:
        idx = torch.as_tensor(index, dtype=torch.long).reshape(-1)
        positions = idx.numpy()
        return Batch(
            {k: c.gather(positions) for k, c in self.columns.items()},
            {k: v[idx] for k, v in self.masks.items()},
            None if self.target is None else self.target[idx],
            idx,
        )

    @property
    def inputs(self) -> dict[str, Column]:
        return self.columns

    def subset(self, positions: np.ndarray) -> "DiskFeatures":
        idx = np.asarray(positions, dtype=np.int64)
        cols = {k: Column(c.values, c.slot[idx], c.pre, c.lazy, c.dedupe) for k, c in self.columns.items()}
        t = torch.as_tensor(idx)
        return DiskFeatures(cols, {k: v[t] for k, v in self.masks.items()}, None if self.target is None else self.target[t],
                            [self.rows[i] for i in idx], SkipReport(self.report.table, len(idx), len(idx)), self.store)

    def expanded(self) -> Features:
        """All rows in memory, row by row (for code that edits inputs per row; small data only)."""
        batch = self[np.arange(len(self))]
        inputs = {k: v.dense() if isinstance(v, Indexed) else v for k, v in batch.inputs.items()}
        return Features(inputs, self.masks, self.target, self.rows, self.report)

    def nbytes(self) -> int:
        return sum(c.values.nbytes for c in self.columns.values())


class ShardStore:
    """The folder holding this featurization's shards (removed when no features use it); cached shards live elsewhere."""

    def __init__(self, root: Optional[Path]) -> None:
        if root is not None:
            Path(root).mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix="modalfuse-shards-", dir=root))
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self.folder), True)
