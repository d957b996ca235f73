"""Exact resume: a shuffling sampler that can restart mid-epoch, and the callback that writes checkpoints.

What a resumed run needs beyond Lightning's own state (weights, optimizer, scheduler, loop progress, early
stopping) is kept in the checkpoint by :class:`Checkpointer`: the Python, NumPy and torch RNG states, the
sampler's generator and position in the epoch, the torch RNG state at the epoch's start (from which the
DataLoader draws its worker seeds), whether early stopping had stopped the run, and the thread count.

Where each state is restored matters for bit-identical results. After an epoch-end checkpoint everything is
restored before the DataLoader is iterated, exactly as in the uninterrupted run. After a mid-epoch checkpoint the
DataLoader is iterated first (drawing its seed from the epoch-start RNG state, as the uninterrupted run did) and
the RNG states of the checkpoint are restored at the first training batch.
"""
from __future__ import annotations

import random
import time
import warnings
from pathlib import Path
from typing import Any, Optional

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Checkpoint
from torch.utils.data import RandomSampler

from ..cli import interrupt  # signal deferral; the cli package imports nothing heavy
from ..data.loader import Resumable
from .checkpoint import checkpoint_name, prune, FOLDER


class ResumableSampler(Resumable, RandomSampler):
    """``RandomSampler`` (same order for the same generator) that can start an epoch part-way through."""

    def __init__(self, data_source, generator: torch.Generator) -> None:
        super().__init__(data_source, generator=generator)
        self._init_resumable()

    def __iter__(self):
        skip = self._start_epoch()
        for i, index in enumerate(super().__iter__()):
            if i >= skip:
                yield index


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Checkpointer(Checkpoint):
    """Write a checkpoint into ``run_dir/checkpoints`` at each epoch end and every ``every_steps`` optimizer steps;
    on a deferred SIGINT/SIGTERM, write one at the next safe point and stop with :class:`interrupt.Interrupted`.

    A ``Checkpoint`` subclass, so that Lightning calls it after early stopping has decided on the epoch. Under
    several processes every rank has one and takes part in each save (Lightning's save waits for all ranks);
    rank zero writes, and its ``run_dir`` decides: without one (a rank other than zero may have none) nothing is saved.
    """

    def __init__(self, run_dir: Optional[Path], sampler: Resumable, batch_size: int, every_steps: Optional[int] = None,
                 keep: int = 2, adopt_threads: bool = True) -> None:
        self.run_dir, self.sampler, self.batch_size = Path(run_dir) if run_dir is not None else None, sampler, batch_size
        self.enabled = run_dir is not None
        self.every_steps, self.keep = every_steps, keep
        self.adopt_threads = adopt_threads  # a resumed run keeps the thread count it started with (results depend on it)
        self.skip = 0  # samples of the current epoch already trained on, at the moment of saving
        self.epoch_rng = torch.get_rng_state()
        self.pending: Optional[int] = None  # a deferred signal
        self.last: Optional[Path] = None
        self.seconds = 0.0  # time spent writing checkpoints
        self._restore_at_batch: Optional[dict[str, Any]] = None
        self._resumed = False
        self._trainer: Optional[L.Trainer] = None
        self.stop_at_start = False

    # ------------------------------------------------------------ state kept in the checkpoint
    def state_dict(self) -> dict[str, Any]:
        trainer = self._trainer
        return {
            "rng": rng_state(),
            "sampler": self.sampler.state(self.skip),
            "epoch_rng": self.epoch_rng,
            "should_stop": bool(trainer.should_stop) if trainer is not None else False,
            "threads": torch.get_num_threads(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._resumed = True
        self.sampler.resume(state["sampler"])
        self.epoch_rng = state["epoch_rng"]
        self.stop_at_start = bool(state.get("should_stop"))
        if self.adopt_threads and int(state.get("threads", 0)) > 0:
            torch.set_num_threads(int(state["threads"]))
        if int(state["sampler"]["skip"]):
            torch.set_rng_state(state["epoch_rng"])  # the DataLoader draws its seed from it, as at the epoch's start
            self._restore_at_batch = state["rng"]
        else:
            set_rng_state(state["rng"])

    # ------------------------------------------------------------ hooks
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trainer = trainer
        if trainer.world_size > 1:  # every rank saves when rank zero has a run folder, and only then
            self.enabled = bool(trainer.strategy.broadcast(self.run_dir is not None, src=0))
        if trainer.is_global_zero and self.enabled:
            prune(self.run_dir, self.keep)  # temporary folders a killed writer left
        # Lightning cannot see that ResumableSampler restarts mid-epoch by itself
        warnings.filterwarnings("ignore", message=".*your dataloader is not resumable.*")

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._resumed:
            self.epoch_rng = torch.get_rng_state()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        interrupt.defer(self)
        if self.stop_at_start:  # early stopping had ended the run: do not train a further epoch
            trainer.should_stop = True

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        if self._restore_at_batch is not None:
            set_rng_state(self._restore_at_batch)
            self._restore_at_batch = None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if batch_idx + 1 >= trainer.num_training_batches:
            return  # the epoch-end checkpoint follows
        due = bool(self.every_steps) and trainer.global_step % self.every_steps == 0
        if due or self.pending is not None:
            self.save(trainer, skip=(batch_idx + 1) * self.batch_size)
        self._stop_if_asked()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.save(trainer, skip=0)
        self.epoch_rng = torch.get_rng_state()  # what the next epoch's DataLoader draws its seed from
        self._stop_if_asked()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        interrupt.undefer(self)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        interrupt.undefer(self)

    # ------------------------------------------------------------ saving and stopping
    def save(self, trainer: L.Trainer, skip: int) -> Optional[Path]:
        if not self.enabled:
            return None
        start, self.skip = time.perf_counter(), skip
        # a rank other than zero may have no run folder: it passes a path that only rank zero would write
        folder = (self.run_dir or Path(FOLDER)) / FOLDER / checkpoint_name(trainer.current_epoch, trainer.global_step)
        trainer.save_checkpoint(folder)  # written by rank zero only; every rank waits for it
        self.last = folder
        if trainer.is_global_zero:
            prune(self.run_dir, self.keep)
        self.seconds += time.perf_counter() - start
        return folder

    def notice(self, signum: int) -> None:
        """Called from the signal handler: remember the signal; Lightning must not act on SIGTERM itself."""
        self.pending = signum
        connector = getattr(self._trainer, "_signal_connector", None)
        if connector is not None:
            connector.received_sigterm = False

    def _stop_if_asked(self) -> None:
        if self.pending is not None:
            stop = interrupt.Interrupted(self.pending)
            stop.checkpoint = self.last
            raise stop
