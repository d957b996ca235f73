"""Data-parallel training on Lightning's strategies: which strategy, each rank's share of a batch, rank-zero writes.

``train.strategy`` picks a Lightning strategy (auto, ddp, ddp_spawn, fsdp); ``train.devices`` processes per node and
``train.num_nodes`` nodes. Under a launcher (torchrun, SLURM's srun) every process runs the caller's code and Lightning
joins them; without one, ``auto`` with several devices becomes ``ddp_spawn``, which runs only the training loop in
the worker processes (an explicit ``ddp`` there would start copies of the whole calling script, so it is refused).

Every rank sees the same shuffled order and takes its slice of each *global* batch of ``train.batch_size`` rows, so
2 processes take the same optimiser steps, over the same rows, as 1 process with the same batch size and seed.
"""
from __future__ import annotations

import math
import multiprocessing
import os
from contextlib import contextmanager
from typing import Iterator, Optional

import lightning as L
import torch
from lightning.fabric.utilities.rank_zero import _get_rank
from torch.utils.data import DataLoader, Sampler

from ..errors import ConfigError
from ..data.loader import Resumable

#: environment variables a launcher sets (torchrun / torchelastic; SLURM's srun)
LAUNCHERS = {"torchrun": "TORCHELASTIC_RUN_ID", "slurm": "SLURM_NTASKS"}


def launcher() -> Optional[str]:
    """The launcher that started this process (``torchrun`` or ``slurm``), or None."""
    if os.environ.get("TORCHELASTIC_RUN_ID") or ("LOCAL_WORLD_SIZE" in os.environ and "WORLD_SIZE" in os.environ):
        return "torchrun"
    if os.environ.get("SLURM_NTASKS") and os.environ.get("SLURM_JOB_NAME") not in (None, "bash", "interactive"):
        return "slurm"
    return None


def global_rank() -> int:
    """This process's rank: 0 when not distributed, or in the process that spawned ddp_spawn workers."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return _get_rank() or 0


def is_rank_zero() -> bool:
    """True in the one process that writes run folders, reports, models and logs."""
    return global_rank() == 0


def strategy_settings(cfg) -> dict:
    """``strategy``, ``devices`` and ``num_nodes`` for ``L.Trainer`` from a TrainConfig (errors name the key)."""
    strategy, devices, nodes = cfg.strategy, cfg.devices, cfg.num_nodes
    started_by = launcher()
    if started_by == "torchrun" and devices in (1, "auto") and nodes == 1:
        # one process per "device" on each node: take the launcher's counts instead of refusing its processes
        devices = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        nodes = max(1, int(os.environ.get("WORLD_SIZE", devices)) // devices)
    several = nodes > 1 or (isinstance(devices, int) and devices > 1) or (isinstance(devices, str) and devices not in ("1", "auto"))
    if started_by is None and several:
        if strategy == "auto":
            strategy = "ddp_spawn"
        elif strategy in ("ddp", "fsdp"):
            raise ConfigError(f"train.strategy: {strategy} without a launcher starts a copy of the whole calling script per process; "
                              "launch it with torchrun or srun (see docs/distributed.md), or use strategy: ddp_spawn")
    if strategy == "ddp_spawn" and started_by is not None:
        strategy = "ddp"  # the launcher already started the processes
    if strategy == "ddp_spawn" and getattr(multiprocessing.current_process(), "_inheriting", False):
        raise ConfigError("train.strategy: ddp_spawn was asked from a worker process re-importing your script; "
                          "put the training code under `if __name__ == \"__main__\":`")
    if cfg.accelerator == "cpu" and strategy in ("ddp", "ddp_spawn"):
        from lightning.pytorch.strategies import DDPStrategy

        # gloo on CPU; on one node, bind to loopback so that no network interface needs to be found
        strategy = DDPStrategy(start_method="spawn" if strategy == "ddp_spawn" else "popen", process_group_backend="gloo")
    return {"strategy": strategy, "devices": devices, "num_nodes": nodes}


@contextmanager
def spawn_sharing(trainer: L.Trainer) -> Iterator[None]:
    """While ``ddp_spawn`` pickles the data for its workers, share tensors through files, not descriptors: Python 3.11
    passes one descriptor twice when two tensors share a storage, and the spawn then fails (bad value in fds_to_keep)."""
    spawning = getattr(getattr(trainer.strategy, "_start_method", None), "__str__", lambda: "")() == "spawn"
    before = torch.multiprocessing.get_sharing_strategy()
    if spawning:
        torch.multiprocessing.set_sharing_strategy("file_system")
    try:
        yield
    finally:
        torch.multiprocessing.set_sharing_strategy(before)


def world() -> tuple[int, int]:
    """(rank, world size) of the initialised process group, else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class RankBatches(Resumable, Sampler):
    """Batches of row indices: global batches of ``batch_size`` in one seeded order, this rank's strided slice of each.

    The rank is read when iterating, so one sampler built before ``ddp_spawn`` serves every worker. With one process
    it yields exactly what ``BatchSampler(RandomSampler(generator=seed))`` yields. A global batch smaller than the
    world size is padded by repetition, so that every rank takes the same number of steps (DDP needs that). The
    global batches do not depend on the world size, so a checkpoint resumes (mid-epoch too) under another one.
    """

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int = 0) -> None:
        self.n, self.batch_size, self.shuffle = n, batch_size, shuffle
        self.generator = torch.Generator().manual_seed(seed)
        self._init_resumable()

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        rank, size = world()
        skip = self._start_epoch()
        order = torch.randperm(self.n, generator=self.generator) if self.shuffle else torch.arange(self.n)
        for start in range(skip, self.n, self.batch_size):
            rows = order[start:start + self.batch_size]
            if len(rows) < size:
                rows = rows.repeat(math.ceil(size / len(rows)))[:size]
            yield rows[rank::size].tolist() if size > 1 else rows.tolist()


def rank_loader(features, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    """A DataLoader of whole batches gathered by index (no per-sample collation), sharded across ranks."""
    return DataLoader(features, sampler=RankBatches(len(features), batch_size, shuffle, seed), batch_size=None)


class RankZeroSummary(L.Callback):
    """Carry what the main process needs out of ``ddp_spawn`` workers: best weights go back with the final weights
    (Lightning returns rank zero's), the best epoch and epoch count in ``callback_metrics`` (returned too)."""

    def __init__(self, best, threads: Optional[int]) -> None:
        self.best, self.threads = best, threads

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        if self.threads:  # a spawned worker starts with torch's default thread count
            torch.set_num_threads(self.threads)

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.world_size == 1:
            return
        if self.best.state is not None:
            module.net.load_state_dict(self.best.state)
        trainer.callback_metrics["_best_epoch"] = torch.tensor(float(self.best.epoch))
        trainer.callback_metrics["_best_loss"] = torch.tensor(float(self.best.best))
        trainer.callback_metrics["_epochs"] = torch.tensor(float(trainer.current_epoch))

    @staticmethod
    def recover(trainer: L.Trainer, best) -> Optional[int]:
        """In the main process after ``ddp_spawn``: the workers' best epoch and loss into ``best``; epochs run."""
        metrics = trainer.callback_metrics
        if "_epochs" not in metrics or best.state is not None:
            return None
        best.epoch, best.best = int(metrics.pop("_best_epoch")), float(metrics.pop("_best_loss"))
        return int(metrics.pop("_epochs"))
