"""``JointVAE``: a joint embedding of two or more count modalities that tolerates cells lacking some of them, and
translation between them (RNA → protein, RNA ↔ ATAC).

Data in: anything ``read_cells`` takes (MuData, a mapping of AnnData / files / sparse matrices, ...) or a frame from
it; cells are matched by name and a cell absent from a modality has it missing. Each modality is a counts kind with
raw (or binary) values and features picked on the training cells; ``batch_key`` names the batch/library column the
encoders and decoders are conditioned on (batch correction by conditioning, as in scVI).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
import torch

from ..config import ModalityConfig
from ..core.storage import load_preprocessors, load_state, open_model_folder, read_json, read_tensors, save_model_folder
from ..data.dataset import Features, featurize
from ..data.readers import as_frame
from ..errors import ConfigError, DataError, fitted
from ..kinds import make_preprocessor
from .likelihoods import LIKELIHOODS
from .network import JointVAENet

#: the counts options each likelihood reads its modality with
_OPTIONS = {
    "nb": {"transform": "raw", "select": "variance"},
    "nbmix": {"transform": "raw", "n_features": 0},
    "bernoulli": {"transform": "binary", "select": "frequency"},
}


class JointVAE:
    """Multimodal VAE with per-modality count decoders and a product-of-experts posterior.

    ``modalities`` maps a column (modality) name to its likelihood (``nb`` RNA, ``nbmix`` protein, ``bernoulli``
    peaks) or to ``{"likelihood": ..., "n_features": ...}``.
    """

    def __init__(self, modalities: dict[str, Any], batch_key: Optional[str] = None, latent: int = 20, hidden: int = 256,
                 dropout: float = 0.1, epochs: int = 60, batch_size: int = 256, lr: float = 2e-3, cross_weight: float = 1.0,
                 kl_warmup: int = 10, seed: int = 0, on_error: str = "raise") -> None:
        if len(modalities) < 1:
            raise ConfigError("modalities: give at least one count modality")
        self.specs: dict[str, dict[str, Any]] = {}
        for name, spec in modalities.items():
            spec = {"likelihood": spec} if isinstance(spec, str) else dict(spec)
            if spec.get("likelihood") not in LIKELIHOODS:
                raise ConfigError(f"modalities.{name}.likelihood: expected one of {list(LIKELIHOODS)}, got {spec.get('likelihood')!r}")
            self.specs[name] = spec
        self.batch_key, self.latent, self.hidden, self.dropout = batch_key, latent, hidden, dropout
        self.epochs, self.batch_size, self.lr, self.cross_weight = epochs, batch_size, lr, cross_weight
        self.kl_warmup, self.seed, self.on_error = kl_warmup, seed, on_error
        self.preprocessors = self._preprocessors()
        self.batches: list[str] = []
        self.net: Optional[JointVAENet] = None
        self.history: dict[str, Any] = {}
        self.report = None

    def _preprocessors(self) -> dict:
        out = {}
        for name, spec in self.specs.items():
            options = {**_OPTIONS[spec["likelihood"]], **{k: v for k, v in spec.items() if k != "likelihood"}}
            out[name] = make_preprocessor(ModalityConfig(name=name, kind="counts", options=options))
        return out

    def settings(self) -> dict[str, Any]:
        return {"modalities": self.specs, "batch_key": self.batch_key, "latent": self.latent, "hidden": self.hidden,
                "dropout": self.dropout, "epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
                "cross_weight": self.cross_weight, "kl_warmup": self.kl_warmup, "seed": self.seed, "on_error": self.on_error}

    # ----------------------------------------------------------------- data
    def _features(self, data: Any, fit: bool = False) -> tuple[Features, torch.Tensor]:
        frame, table, base = as_frame(data)
        missing = [n for n in self.specs if n not in frame.columns]
        if missing:
            raise DataError(f"the input has no modality {missing} (it has {list(frame.columns)[:20]})", table=table)
        feats = featurize(frame, self.preprocessors, None, None, fit=fit, table=table, base_dir=base, on_error=self.on_error)
        self.report = feats.report
        labels = None
        if self.batch_key is not None:
            if self.batch_key not in frame.columns:
                raise DataError(f"batch_key {self.batch_key!r} is not a column of the input", table=table)
            labels = frame.loc[feats.rows, self.batch_key].astype(str).to_numpy()
            if fit:
                self.batches = sorted(set(labels))
            unknown = sorted(set(labels) - set(self.batches))
            if unknown:
                raise DataError(f"batches {unknown[:5]} were not seen in training (known: {self.batches[:10]})", column=self.batch_key)
        onehot = torch.zeros(len(feats), len(self.batches))
        if labels is not None and len(self.batches):
            onehot[torch.arange(len(feats)), torch.as_tensor([self.batches.index(b) for b in labels], dtype=torch.long)] = 1
        return feats, onehot

    # ----------------------------------------------------------------- fit
    def fit(self, data: Any) -> "JointVAE":
        torch.manual_seed(self.seed)
        self.preprocessors = self._preprocessors()
        feats, onehot = self._features(data, fit=True)
        if len(feats) == 0:
            raise DataError("no cell left to train on")
        specs = {n: (s["likelihood"], self.preprocessors[n].dim) for n, s in self.specs.items()}
        self.net = JointVAENet(specs, len(self.batches), self.latent, self.hidden, self.dropout)
        opt = torch.optim.AdamW(self.net.parameters(), lr=self.lr, weight_decay=1e-6)
        gen = torch.Generator().manual_seed(self.seed)
        start, losses = time.perf_counter(), []
        self.net.train()
        for epoch in range(self.epochs):
            kl_weight = min(1.0, (epoch + 1) / max(self.kl_warmup, 1))
            order, total = torch.randperm(len(feats), generator=gen), 0.0
            for s in range(0, len(feats), self.batch_size):
                idx = order[s:s + self.batch_size]
                batch = feats[idx]
                out = self.net.loss(batch.inputs, batch.masks, onehot[idx], kl_weight, self.cross_weight)
                opt.zero_grad()
                out["loss"].backward()
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), 10.0)
                opt.step()
                total += float(out["loss"].detach()) * len(idx)
            losses.append(total / len(feats))
        self.net.eval()
        self.history = {"loss": losses, "seconds": time.perf_counter() - start, "cells": len(feats),
                        "features": {n: d for n, (_, d) in specs.items()}, "report": self.report.summary()}
        return self

    def _require(self) -> JointVAENet:
        return fitted(self.net)

    # ----------------------------------------------------------------- outputs
    @torch.no_grad()
    def _posterior(self, feats: Features, onehot: torch.Tensor, use: Optional[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        net, out, has = self._require(), [], []
        names = [n for n in self.specs if use is None or n in use]
        for s in range(0, len(feats), 1024):
            idx = torch.arange(s, min(len(feats), s + 1024))
            batch = feats[idx]
            mu, _ = net.encode(batch.inputs, batch.masks, onehot[idx], names)
            out.append(mu)
            has.append(torch.stack([batch.masks[n] for n in names]).any(dim=0))
        return torch.cat(out).numpy(), torch.cat(has).numpy()

    def embed(self, data: Any, use: Optional[list[str]] = None) -> pd.DataFrame:
        """Posterior means [cells, latent] from the modalities each cell has (only ``use`` when given); a cell with
        none of them gets NaN. Indexed by cell name."""
        feats, onehot = self._features(data)
        z, has = self._posterior(feats, onehot, use)
        z[~has] = np.nan
        return pd.DataFrame(z, index=pd.Index(feats.rows, name="cell"), columns=[f"z{i}" for i in range(z.shape[1])])

    @torch.no_grad()
    def translate(self, data: Any, target: str, source: Optional[list[str]] = None, denoised: bool = False) -> pd.DataFrame:
        """Expected values of modality ``target`` from ``source`` modalities (default: all others): RNA as counts per
        10,000, protein as counts (``denoised``: background removed), peaks as detection probabilities. Cells that
        have none of ``source`` get NaN. Columns: the target's features."""
        net = self._require()
        if target not in self.specs:
            raise ConfigError(f"target: {target!r} is not a modality of this model ({list(self.specs)})")
        source = source or [n for n in self.specs if n != target]
        feats, onehot = self._features(data)
        z, has = self._posterior(feats, onehot, source)
        zt, lib = torch.from_numpy(z), torch.full((len(z),), 1e4)
        if self.specs[target]["likelihood"] == "bernoulli":
            lib = torch.zeros(len(z))
        params = net.decode(target, zt, onehot, lib)
        dec = net.decoders[target]
        values = (dec.foreground(params) if denoised and dec.likelihood == "nbmix" else dec.mean(params)).numpy()
        values[~has] = np.nan
        names = self.preprocessors[target].selected_names or [str(i) for i in self.preprocessors[target].selected]
        return pd.DataFrame(values, index=pd.Index(feats.rows, name="cell"), columns=names)

    def observed(self, data: Any, name: str) -> tuple[pd.DataFrame, np.ndarray]:
        """The kept features' raw values of modality ``name`` (dense) and which cells have it, for scoring translations."""
        feats, _ = self._features(data)
        x = feats.inputs[name].dense().numpy()
        names = self.preprocessors[name].selected_names or [str(i) for i in self.preprocessors[name].selected]
        return pd.DataFrame(x, index=pd.Index(feats.rows, name="cell"), columns=names), feats.masks[name].numpy()

    # ----------------------------------------------------------------- save / load
    def save(self, folder: str | Path) -> Path:
        net = self._require()
        files = {"joint_vae.json": json.dumps({**self.settings(), "batches": self.batches}, indent=2),
                 "preprocessors.json": json.dumps({n: p.state_dict() for n, p in self.preprocessors.items()}),
                 "history.json": json.dumps(self.history, default=str)}
        return save_model_folder(folder, net.state_dict(), files)

    @classmethod
    def load(cls, folder: str | Path) -> "JointVAE":
        folder = open_model_folder(folder, "joint_vae.json", "joint VAE")
        settings = read_json(folder, "joint_vae.json")
        batches = settings.pop("batches")
        model = cls(**settings)
        model.batches = batches
        load_preprocessors(model.preprocessors, folder)
        specs = {n: (s["likelihood"], model.preprocessors[n].dim) for n, s in model.specs.items()}
        model.net = JointVAENet(specs, len(batches), model.latent, model.hidden, model.dropout)
        load_state(model.net, read_tensors(folder), folder)
        model.net.eval()
        model.history = read_json(folder, "history.json")
        return model
