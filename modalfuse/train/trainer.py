"""Fit a net with Lightning (a MultimodalNet, or any NetModule): early stopping, best weights, seeded, per-epoch CSV, resumable checkpoints."""
from __future__ import annotations

import copy
import csv
import logging
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Optional, Sequence, Union

import lightning as L
from lightning.fabric.utilities.exceptions import MisconfigurationException
import torch
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

from ..config import TrainConfig
from ..errors import ConfigError
from ..data.dataset import Features
from ..data.loader import Resumable
from ..model import MultimodalNet
from .checkpoint import SafetensorsCheckpointIO
from ..tracking.loggers import make_logger
from .distributed import RankZeroSummary, is_rank_zero, rank_loader, spawn_sharing, strategy_settings
from .base import NetModule
from .module import MultimodalModule
from .resume import Checkpointer, ResumableSampler
from .threads import training_threads

warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def show_progress(wanted: bool) -> bool:
    """Progress bars go to stderr, and only to a terminal (MODALFUSE_PROGRESS=1 forces them): logs stay clean."""
    return bool(wanted) and (sys.stderr.isatty() or bool(os.environ.get("MODALFUSE_PROGRESS")))


def batches(features: Features, batch_size: int, shuffle: bool, seed: int = 0, workers: int = 0) -> DataLoader:
    """Whole batches are gathered by index from in-memory tensors: no per-sample collation."""
    custom = features.custom_loader(batch_size, shuffle, seed, workers) if hasattr(features, "custom_loader") else None
    if custom is not None:  # disk storage (worker processes) or augmentation: the data layer's loader
        return custom
    generator = torch.Generator().manual_seed(seed)
    sampler = ResumableSampler(features, generator) if shuffle else SequentialSampler(features)
    return DataLoader(features, sampler=BatchSampler(sampler, batch_size, drop_last=False), batch_size=None, num_workers=workers)


class BestWeights(L.Callback):
    """Keep the weights of the epoch with the lowest selection loss (``val_select``: the validation loss without
    penalties annealed over epochs, so that epochs compare), in memory."""

    def __init__(self) -> None:
        self.best = float("inf")
        self.state: Optional[dict] = None
        self.epoch = -1

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        loss = float(trainer.callback_metrics.get("val_select", float("inf")))
        if loss < self.best:
            self.best, self.epoch = loss, trainer.current_epoch
            self.state = copy.deepcopy(module.net.state_dict())

    def state_dict(self) -> dict:
        return {"best": self.best, "epoch": self.epoch, "state": self.state}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.epoch, self.state = state["best"], state["epoch"], state["state"]


class EpochCSV(L.Callback):
    """Append one row per epoch (losses, validation metrics, learning rate, seconds) to a CSV."""

    def __init__(self, path: Optional[Path]) -> None:
        self.path = path  # None: a rank other than zero, which reads the metrics with the others but writes nothing
        self.start = time.perf_counter()
        self.rows: list[dict] = []

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        metrics = trainer.callback_metrics  # on every rank: reading them reduces the epoch's values (a collective)
        if not trainer.is_global_zero or self.path is None:
            return
        row = {"epoch": trainer.current_epoch, "seconds": round(time.perf_counter() - self.start, 3), "lr": trainer.optimizers[0].param_groups[0]["lr"]}
        row.update({k: round(float(v), 6) for k, v in sorted(metrics.items())})
        self.rows.append(row)
        keys = list(dict.fromkeys(k for r in self.rows for k in r))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.rows)

    def state_dict(self) -> dict:
        return {"rows": self.rows, "seconds": time.perf_counter() - self.start}

    def load_state_dict(self, state: dict) -> None:
        self.rows, self.start = state["rows"], time.perf_counter() - state["seconds"]


def fit_net(
    net: Union[MultimodalNet, NetModule],
    train: Features,
    val: Optional[Features],
    cfg: TrainConfig,
    aux_weight: float = 0.0,
    run_dir: Optional[Path] = None,
    resume: Optional[Path] = None,
    callbacks: Sequence[L.Callback] = (),
) -> dict:
    """Train a net in place and load its best validation weights (lowest ``val_select``); returns a small summary.

    A MultimodalNet is wrapped in a :class:`MultimodalModule` once seeded (its training-only heads draw their
    initial weights after the seed); any other net comes inside its own :class:`NetModule`, built by the caller.
    With a ``run_dir`` a checkpoint is written to ``run_dir/checkpoints`` at each epoch end (see ``resume.py``);
    ``resume`` names one to continue from."""
    logging.getLogger("lightning").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*number of training batches.*")
    warnings.filterwarnings("ignore", message=".*validation_step.* but have no `val_dataloader`.*")
    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode at the start of training.*")  # frozen backbones
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.precision == "16-mixed" and not torch.cuda.is_available():
        raise ConfigError("train.precision: 16-mixed needs a CUDA GPU, and none is available; use 32 or bf16-mixed on CPU")
    prebuilt = isinstance(net, NetModule)
    if cfg.compile:
        (net.net if prebuilt else net).compile(**({} if cfg.compile is True else {"backend": cfg.compile}))
    module = net if prebuilt else MultimodalModule(net, cfg, aux_weight)
    has_val = val is not None and len(val) > 0
    settings = strategy_settings(cfg)
    distributed = settings["num_nodes"] > 1 or str(settings["devices"]) not in ("1", "auto")
    if distributed and not module.shardable:
        raise ConfigError(f"train.devices / train.num_nodes: {type(module).__name__} trains in one process only "
                          f"(its loss is not a mean over rows, so a batch cannot be split across processes); got {settings['devices']} devices on {settings['num_nodes']} nodes")
    if distributed:  # every rank takes its slice of each global batch (distributed.py)
        loader = rank_loader(train, cfg.batch_size, shuffle=True, seed=cfg.seed)
        val_loader = rank_loader(val, cfg.batch_size, shuffle=False) if has_val else None
    else:
        loader = batches(train, cfg.batch_size, shuffle=True, seed=cfg.seed, workers=cfg.workers)
        val_loader = batches(val, cfg.batch_size, shuffle=False, workers=cfg.workers) if has_val else None
    best = BestWeights()
    extra = list(callbacks)
    callbacks: list[L.Callback] = [best] if has_val else []
    if has_val and cfg.patience:
        callbacks.append(L.pytorch.callbacks.EarlyStopping("val_select", patience=cfg.patience, mode="min"))
    callbacks += [RankZeroSummary(best, cfg.threads), *extra]
    if run_dir is not None or distributed:  # on every rank: reading the epoch's metrics is a collective
        callbacks.append(EpochCSV(Path(run_dir) / "metrics.csv" if run_dir is not None else None))
    # checkpoints (exact resume); under several processes rank zero writes them, and every rank resumes from them
    sampler = loader.sampler if isinstance(loader.sampler, Resumable) else loader.sampler.sampler  # else a BatchSampler
    # every rank takes part in each save, so every rank has a saver (rank zero's run folder decides, see Checkpointer)
    saver = Checkpointer(Path(run_dir) if run_dir is not None else None, sampler, cfg.batch_size, cfg.checkpoint_every_steps,
                         adopt_threads=not cfg.threads) if cfg.checkpoint and (run_dir is not None or distributed) else None
    callbacks += [saver] if saver else []
    progress = show_progress(cfg.progress)
    if progress:  # tqdm writes to stderr; Lightning's default rich bar would write to stdout
        callbacks.append(L.pytorch.callbacks.TQDMProgressBar())
    try:
        trainer = L.Trainer(
            max_epochs=cfg.max_epochs,
            accelerator=cfg.accelerator,
            **settings,
            logger=make_logger(cfg, run_dir) if run_dir is not None and is_rank_zero() else False,
            enable_checkpointing=saver is not None,
            plugins=[SafetensorsCheckpointIO()] if saver else None,
            precision=cfg.precision,
            use_distributed_sampler=False,  # rank_loader shards each global batch itself
            enable_progress_bar=progress,
            enable_model_summary=False,
            callbacks=callbacks,
            num_sanity_val_steps=0,
            default_root_dir=str(run_dir) if run_dir else None,
        )
    except (MisconfigurationException, ValueError, RuntimeError, TypeError) as err:
        raise ConfigError(f"train.accelerator / train.devices / train.strategy: {cfg.accelerator!r} with devices {cfg.devices!r} and strategy {cfg.strategy!r} cannot be used here "
                          f"({str(err).splitlines()[0][:200]}); expected e.g. accelerator: cpu, devices: 1") from None
    start = time.perf_counter()
    with training_threads(cfg.threads) as threads, spawn_sharing(trainer):
        trainer.fit(module, loader, val_loader, ckpt_path=str(resume) if resume else None)
    ran = RankZeroSummary.recover(trainer, best)  # after ddp_spawn: the workers' best epoch; weights came back
    ran = trainer.current_epoch if ran is None else ran
    if best.state is not None:
        module.net.load_state_dict(best.state)
    return {
        "epochs": ran,
        "best_epoch": best.epoch if has_val else ran - 1,
        "best_val_loss": best.best if has_val else None,
        "seconds": round(time.perf_counter() - start, 2),
        "threads": threads,  # chosen from the free cores unless train.threads pins it; floats depend on it
        **({"resumed_from": str(resume) if resume else None} if saver and run_dir is not None else {}),
        # time spent writing checkpoints; ddp_spawn workers keep theirs
        **({"checkpoint_seconds": round(saver.seconds, 3)} if saver and run_dir is not None and not distributed else {}),
    }
