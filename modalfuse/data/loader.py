"""Training batches with worker processes and seeded per-batch randomness (augmentation).

The sampler runs in the main process and numbers every batch it hands out: (epoch, batch number, row
positions). Whichever worker process gathers a batch, its augmentation draws come from a generator seeded
by (seed, epoch, batch number), so a run is the same with 0, 1 or 4 workers. The batch order itself is the
one the in-memory path has always used (a RandomSampler with a generator seeded once per fit). Samplers are
:class:`Resumable`: a checkpoint (train/resume.py) restarts them part-way through an epoch.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Optional

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, Sampler, SequentialSampler

from .batch import Batch
from .entities import Indexed

#: name → f(values, generator) applied to that modality's batch values while training
Augmenters = dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]]


class Resumable:
    """What a sampler needs to restart an epoch part-way: the generator state at the epoch's start and rows to skip.

    A subclass calls ``_start_epoch()`` as its iteration begins and skips the rows it returns."""

    generator: torch.Generator

    def _init_resumable(self) -> None:
        self.epoch_state = self.generator.get_state()
        self._resume: Optional[dict[str, Any]] = None

    def _start_epoch(self) -> int:
        skip = 0
        if self._resume is not None:
            self.generator.set_state(self._resume["generator"])
            skip, self._resume = int(self._resume["skip"]), None
        self.epoch_state = self.generator.get_state()
        return skip

    def state(self, skip: int) -> dict[str, Any]:
        """``skip`` > 0: the epoch is ``skip`` rows in, and restarts from its first state; 0: the next epoch."""
        return {"generator": self.epoch_state if skip else self.generator.get_state(), "skip": skip}

    def resume(self, state: dict[str, Any]) -> None:
        self._resume = state


class NumberedBatches(Resumable, Sampler):
    """Batches of row positions tagged (epoch, number, positions); ``epoch`` counts the passes made."""

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int, persistent: bool = False) -> None:
        self.persistent, self.batch_size = persistent, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        rows = range(n)
        self.batches = BatchSampler(RandomSampler(rows, generator=self.generator) if shuffle else SequentialSampler(rows), batch_size, drop_last=False)
        self.epoch = -1
        self._passes = 0  # passes made in this process (a resumed run starts again at 0, with a new DataLoader)
        self._init_resumable()

    def state(self, skip: int) -> dict[str, Any]:
        # the pass a resumed iteration makes: this one again (mid-epoch) or the next one
        return {**super().state(skip), "epoch": self.epoch - 1 if skip else self.epoch}

    def resume(self, state: dict[str, Any]) -> None:
        super().resume(state)
        self.epoch = int(state["epoch"])

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[tuple[int, int, list[int]]]:
        skip = self._start_epoch()
        self.epoch += 1
        if self.persistent and self._passes > 0:
            # a DataLoader draws its workers' base seed from the global generator each time it is iterated, except with
            # persistent workers (once): draw it here too, so the training draws (dropout) match whatever the workers
            torch.empty((), dtype=torch.int64).random_()
        self._passes += 1
        for k, positions in enumerate(self.batches):
            if k * self.batch_size >= skip:
                yield self.epoch, k, positions


def batch_seed(seed: int, epoch: int, number: int) -> int:
    return (seed * 1_000_003 + epoch) * 1_000_033 + number & 0x7FFF_FFFF_FFFF_FFFF


class Gathered(torch.utils.data.Dataset):
    """Gathers a numbered batch from ``features`` (in memory or on disk) and augments it when asked."""

    def __init__(self, features: Any, augment: Optional[Augmenters] = None, seed: int = 0) -> None:
        self.features, self.augment, self.seed = features, augment or {}, seed

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, item: tuple[int, int, list[int]]) -> Batch:
        epoch, number, positions = item
        batch = self.features[torch.as_tensor(positions, dtype=torch.long)]
        if not self.augment:
            return batch
        generator = torch.Generator().manual_seed(batch_seed(self.seed, epoch, number))
        inputs = dict(batch.inputs)
        for name, fn in self.augment.items():  # in modality order: the draws do not depend on dict order elsewhere
            value = inputs[name]
            if isinstance(value, Indexed):
                inputs[name] = Indexed(fn(value.values, generator), value.index)
            else:
                inputs[name] = fn(value, generator)
        return Batch(inputs, batch.masks, batch.target, batch.index)


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def make_loader(features: Any, batch_size: int, shuffle: bool, seed: int, workers: int = 0, augment: Optional[Augmenters] = None) -> DataLoader:
    """A DataLoader of whole batches (no per-sample collation), gathered by ``workers`` processes (0: this one)."""
    sampler = NumberedBatches(len(features), batch_size, shuffle, seed, persistent=workers > 0)
    # spawned, not forked: a forked worker's resident set starts as a copy of the trainer's page table (torch,
    # the model, Lightning), so every worker would count the whole trainer again; a spawned one holds only what
    # gathering needs (the shards are read through the page cache, shared by all)
    return DataLoader(
        Gathered(features, augment, seed), sampler=sampler, batch_size=None, num_workers=workers,
        persistent_workers=workers > 0, worker_init_fn=_worker_init if workers > 0 else None,
        multiprocessing_context="spawn" if workers > 0 else None,
    )
