"""Fit a MultimodalNet with Lightning: early stopping, best weights, seeded, per-epoch CSV."""
from __future__ import annotations

import copy
import csv
import logging
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Optional

import lightning as L
from lightning.fabric.utilities.exceptions import MisconfigurationException
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

from ..config import TrainConfig
from ..errors import ConfigError
from ..data.dataset import Features
from ..model import MultimodalNet
from .module import MultimodalModule

warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def show_progress(wanted: bool) -> bool:
    """Progress bars go to stderr, and only to a terminal (MODALFUSE_PROGRESS=1 forces them): logs stay clean."""
    return bool(wanted) and (sys.stderr.isatty() or bool(os.environ.get("MODALFUSE_PROGRESS")))


def batches(features: Features, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    """Whole batches are gathered by index from in-memory tensors: no per-sample collation."""
    custom = features.custom_loader(batch_size, shuffle, seed) if hasattr(features, "custom_loader") else None
    if custom is not None:  # disk storage (worker processes) or augmentation: the data layer's loader
        return custom
    generator = torch.Generator().manual_seed(seed)
    sampler = RandomSampler(features, generator=generator) if shuffle else SequentialSampler(features)
    return DataLoader(features, sampler=BatchSampler(sampler, batch_size, drop_last=False), batch_size=None)


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


class EpochCSV(L.Callback):
    """Append one row per epoch (losses, validation metrics, learning rate, seconds) to a CSV."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.start = time.perf_counter()
        self.rows: list[dict] = []

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        row = {"epoch": trainer.current_epoch, "seconds": round(time.perf_counter() - self.start, 3), "lr": trainer.optimizers[0].param_groups[0]["lr"]}
        row.update({k: round(float(v), 6) for k, v in sorted(trainer.callback_metrics.items())})
        self.rows.append(row)
        keys = list(dict.fromkeys(k for r in self.rows for k in r))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.rows)


def fit_net(
    net: MultimodalNet,
    train: Features,
    val: Optional[Features],
    cfg: TrainConfig,
    aux_weight: float,
    run_dir: Optional[Path] = None,
) -> dict:
    """Train ``net`` in place and load its best validation weights; returns a small summary."""
    logging.getLogger("lightning").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*number of training batches.*")
    warnings.filterwarnings("ignore", message=".*validation_step.* but have no `val_dataloader`.*")
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    module = MultimodalModule(net, cfg, aux_weight)
    has_val = val is not None and len(val) > 0
    best = BestWeights()
    callbacks: list[L.Callback] = [best] if has_val else []
    if has_val and cfg.patience:
        callbacks.append(L.pytorch.callbacks.EarlyStopping("val_select", patience=cfg.patience, mode="min"))
    if run_dir is not None:
        callbacks.append(EpochCSV(Path(run_dir) / "metrics.csv"))
    progress = show_progress(cfg.progress)
    if progress:  # tqdm writes to stderr; Lightning's default rich bar would write to stdout
        callbacks.append(L.pytorch.callbacks.TQDMProgressBar())
    try:
        trainer = L.Trainer(
            max_epochs=cfg.max_epochs,
            accelerator=cfg.accelerator,
            devices=cfg.devices,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=progress,
            enable_model_summary=False,
            callbacks=callbacks,
            num_sanity_val_steps=0,
            default_root_dir=str(run_dir) if run_dir else None,
        )
    except (MisconfigurationException, ValueError, RuntimeError, TypeError) as err:
        raise ConfigError(f"train.accelerator / train.devices: {cfg.accelerator!r} with devices {cfg.devices!r} cannot be used here "
                          f"({str(err).splitlines()[0][:200]}); expected e.g. accelerator: cpu, devices: 1") from None
    start = time.perf_counter()
    trainer.fit(
        module,
        batches(train, cfg.batch_size, shuffle=True, seed=cfg.seed),
        batches(val, cfg.batch_size, shuffle=False) if has_val else None,
    )
    if best.state is not None:
        net.load_state_dict(best.state)
    return {
        "epochs": trainer.current_epoch,
        "best_epoch": best.epoch if has_val else trainer.current_epoch - 1,
        "best_val_loss": best.best if has_val else None,
        "seconds": round(time.perf_counter() - start, 2),
    }
