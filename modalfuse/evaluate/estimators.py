"""Peers in a benchmark: any scikit-learn-style estimator (``fit`` / ``predict``), named by import path.

A benchmark config's ``estimators`` entries run on the same split, in the same run and process
layout as the fusion methods, so a peer (e.g. aeon's MiniRocket) sits beside our rows measured alike.
The inputs are the named modalities' cells: ``series`` stacks each modality to [n, channels, steps]
and joins the channels; ``flat`` flattens every modality and joins the columns.
"""
from __future__ import annotations

import importlib
import resource
import time
from typing import Any, Literal, Optional

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from ..errors import ConfigError


class EstimatorConfig(BaseModel):
    """A peer estimator: an import path, its constructor options, and the modalities it reads."""

    model_config = ConfigDict(extra="forbid")

    label: str
    estimator: str = Field(description="Import path of the class, e.g. aeon.classification.convolution_based.MiniRocketClassifier.")
    options: dict[str, Any] = Field(default_factory=dict, description="Constructor options; the string '{seed}' is replaced by the run's seed.")
    modalities: Optional[list[str]] = Field(None, description="The modalities it reads (default: all).")
    input: Literal["series", "flat"] = "flat"


def load_class(path: str) -> type:
    """The class at ``module.Class``; a clear error when its package is not installed."""
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as err:
        raise ConfigError(f"estimator {path!r}: cannot import {module!r} ({err}); install its package to run this peer") from None
    except AttributeError:
        raise ConfigError(f"estimator {path!r}: {module!r} has no {name!r}") from None


def stack_inputs(frame: pd.DataFrame, columns: list[str], layout: str) -> np.ndarray:
    """Cells of ``columns`` → one array: [n, Σ channels, steps] (series) or [n, Σ features] (flat)."""
    parts = []
    for column in columns:
        values = np.stack([np.asarray(v, dtype=np.float32) for v in frame[column]])
        if layout == "series":
            parts.append(values if values.ndim == 3 else values[:, None, :])
        else:
            parts.append(values.reshape(len(values), -1))
    return np.concatenate(parts, axis=1)


def run_estimator(spec: EstimatorConfig, ds, seeds: list[int]) -> list[dict[str, Any]]:
    """Fit and test the peer once per seed on ``ds`` (a LoadedDataset); one result row per seed."""
    from .metrics import classification_metrics, regression_metrics

    cls = load_class(spec.estimator)
    names = spec.modalities or [m.name for m in ds.modalities]
    columns = [c for m in ds.modalities if m.name in names for c in m.columns]
    x_train, x_test = stack_inputs(ds.train, columns, spec.input), stack_inputs(ds.test, columns, spec.input)
    y_train, y_test = ds.train[ds.target].to_numpy(), ds.test[ds.target].to_numpy()
    rows = []
    for seed in seeds:
        options = {k: (seed if v == "{seed}" else v) for k, v in spec.options.items()}
        est = cls(**options)
        start = time.perf_counter()
        est.fit(x_train, y_train)
        train_s = time.perf_counter() - start
        start = time.perf_counter()
        if ds.task == "classification":
            classes = list(est.classes_)
            if hasattr(est, "predict_proba"):
                proba = np.asarray(est.predict_proba(x_test), dtype=float)
            else:
                proba = np.eye(len(classes))[[classes.index(p) for p in est.predict(x_test)]]
            metrics = classification_metrics(np.asarray([classes.index(y) for y in y_test]), proba)
        else:
            metrics = regression_metrics(y_test, est.predict(x_test))
        batch_ms = (time.perf_counter() - start) * 1000 / max(1, len(y_test))
        rows.append({"method": spec.label, "seed": seed, **metrics, "test_rows": len(y_test), "params": None,
                     "train_s": round(train_s, 2), "epochs": None, "latency_ms_batched": round(batch_ms, 4), "latency_ms_single": None})
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for row in rows:
        row["peak_rss_mb"] = round(peak_mb, 1)
    return rows
