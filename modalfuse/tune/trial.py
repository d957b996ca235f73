"""One Ray Tune trial: the config with the trial's parameters, trained by the normal trainer, per-epoch metrics reported."""
from __future__ import annotations

import math
from typing import Any, Optional

import lightning as L


class ReportEpochs(L.Callback):
    """After each epoch (validation included), every logged metric and the epoch go to Ray Tune; ASHA may stop here."""

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        from ray import tune

        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if not k.startswith("_")}
        tune.report({**metrics, "epoch": trainer.current_epoch + 1})


def build(raw: dict[str, Any], params: dict[str, Any], data_dir: Optional[str], search_val: float, threads: Optional[int] = None):
    """(model, train, val) of one trial: ``raw`` config (dict, paths absolute) with ``params`` applied."""
    from ..api import MultimodalModel
    from ..config import ModalityConfig, parse_config
    from .space import apply_params

    raw = {k: v for k, v in raw.items() if k not in ("search", "preset")}
    base = parse_config(raw, "search base config")
    modalities, target, train, val = None, base.data.target, base.data.train, base.data.val
    if base.data.dataset:
        from ..datasets import load_dataset

        ds = load_dataset(base.data.dataset, data_dir=data_dir or base.data.data_dir)
        train, target = ds.train, ds.target
        modalities = [m.model_dump(mode="json") for m in ds.modalities]
        raw.setdefault("data", {})["task"] = raw["data"].get("task") if raw["data"].get("task", "auto") != "auto" else ds.task
    raw, mods = apply_params(raw, params, modalities if not raw.get("modalities") else None)
    cfg = parse_config(raw, "trial config")
    if val is None and cfg.train.val_fraction == 0:
        cfg.train.val_fraction = search_val  # trials are compared on validation metrics: they need a validation split
    cfg.train.progress = False
    if threads:
        cfg.train.threads = threads
    chosen = None if cfg.modalities else [ModalityConfig.model_validate(m) for m in (mods or [])]
    return MultimodalModel.from_config(cfg, chosen, target), train, val


def run_trial(params: dict[str, Any], raw: dict[str, Any], data_dir: Optional[str], search_val: float, cpus: float) -> None:
    """The trainable Ray calls with the sampled ``params``."""
    model, train, val = build(raw, params, data_dir, search_val, threads=max(1, math.floor(cpus)))
    model.callbacks.append(ReportEpochs())
    model.fit(train, val)
