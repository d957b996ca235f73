"""Plots for reports (matplotlib, Agg): learning curves, confusion matrix, reliability diagram, robustness
curves, modality weights, attribution summaries, cost scaling. Each function writes one PNG and returns its path.

Figures use a white background, dark text, colour-blind-safe colours and distinct markers or hatches, so
they read in print (grey scale) as well as on screen.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


def pyplot():
    """matplotlib.pyplot on the Agg backend, with its cache outside $HOME unless MPLCONFIGDIR is set."""
    os.environ.setdefault("MPLCONFIGDIR", str(Path(tempfile.gettempdir()) / "modalfuse-mpl"))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.facecolor": "white", "axes.grid": True, "grid.alpha": 0.3, "font.size": 9})
    return plt


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def learning_curves(metrics: pd.DataFrame, path: Path, title: str = "learning curves") -> Path:
    """Losses (left) and validation metrics (right) per epoch, from a run's ``metrics.csv``."""
    plt = pyplot()
    losses = [c for c in metrics.columns if c.endswith("loss") and not c.startswith("val_") or c == "val_loss"]
    others = [c for c in metrics.columns if c.startswith("val_") and c != "val_loss" and metrics[c].notna().any()]
    fig, axes = plt.subplots(1, 2 if others else 1, figsize=(9 if others else 5, 3.4), squeeze=False)
    ax = axes[0, 0]
    for i, col in enumerate(c for c in losses if metrics[c].notna().any()):
        ax.plot(metrics["epoch"], metrics[col], marker=MARKERS[i % 8], ms=4, color=COLOURS[i % 8], label=col,
                ls="-" if col.startswith("train") else "--")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("loss")
    ax.legend(fontsize=7)
    if others:
        bx = axes[0, 1]
        for i, col in enumerate(others):
            bx.plot(metrics["epoch"], metrics[col], marker=MARKERS[i % 8], ms=4, color=COLOURS[i % 8], label=col)
        bx.set_xlabel("epoch")
        bx.set_title("validation metrics")
        bx.legend(fontsize=7)
    fig.suptitle(title)
    return _save(fig, path)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence, path: Path, title: str = "confusion matrix") -> Path:
    """Row-normalised confusion matrix (grey scale, so it prints), each cell annotated with its count."""
    plt = pyplot()
    k = len(classes)
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = min(9.0, 2.5 + 0.45 * k)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    shown = ax.imshow(share, cmap="Greys", vmin=0, vmax=1)
    ax.grid(False)
    labels = [str(c) for c in classes]
    ax.set_xticks(range(k), labels, rotation=45 if max(map(len, labels)) > 3 else 0, ha="right" if max(map(len, labels)) > 3 else "center")
    ax.set_yticks(range(k), labels)
    if k <= 30:
        for i in range(k):
            for j in range(k):
                if counts[i, j]:
                    ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7, color="white" if share[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title} (accuracy {np.trace(counts) / max(counts.sum(), 1):.1%})")
    fig.colorbar(shown, ax=ax, fraction=0.046, label="share of the true class")
    return _save(fig, path)


def reliability(proba: np.ndarray, y: np.ndarray, path: Path, title: str = "reliability") -> Path:
    """The reliability diagram of :mod:`modalfuse.evaluate.calibration`."""
    from ..evaluate.calibration import reliability_diagram

    pyplot()
    return reliability_diagram(proba, y, path, title=title)


def subset_bars(subsets: pd.DataFrame, path: Path, metric: str = "accuracy", title: str = "modalities present") -> Path:
    """Robustness to missing modalities: the metric with only each subset of modalities present."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.35 * len(subsets)))
    y = np.arange(len(subsets))
    ax.barh(y, subsets[metric], color=[COLOURS[int(c) % 8] for c in subsets["count"]], edgecolor="black")
    for yi, v in zip(y, subsets[metric]):
        ax.text(v, yi, f" {v:.3f}", va="center", fontsize=7)
    ax.set_yticks(y, subsets["modalities"])
    ax.invert_yaxis()
    ax.set_xlim(0, 1.1 if metric == "accuracy" else None)
    ax.set_xlabel(f"test {metric} with only these modalities present (others missing)")
    ax.set_title(title)
    return _save(fig, path)


def robustness_curves(curves: pd.DataFrame, path: Path, title: str = "accuracy under corruption") -> Path:
    """Accuracy against corruption level per modality and corruption (``noise_curves.csv`` of ``modalfuse robustness``)."""
    from ..evaluate.robustness import plot_curves

    pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    plot_curves(curves, None, path, title)
    return path


def modality_weights(weights: np.ndarray, names: Sequence[str], path: Path, title: str = "fusion weights per sample") -> Path:
    """Distribution over samples of the weight the fusion gave each modality (box + strip)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(names), 3.4))
    ax.boxplot([weights[:, j] for j in range(len(names))], showfliers=False)
    rng = np.random.default_rng(0)
    for j in range(len(names)):
        sample = weights[:, j][rng.permutation(len(weights))[:400]]
        ax.scatter(j + 1 + rng.uniform(-0.15, 0.15, len(sample)), sample, s=4, alpha=0.4, color=COLOURS[j % 8], marker=MARKERS[j % 8])
    ax.set_xticks(range(1, len(names) + 1), list(names))
    ax.set_ylabel("weight")
    ax.set_title(title)
    return _save(fig, path)


def attribution_summary(frame: pd.DataFrame, modalities: Sequence[str], path: Path, quantity: str = "predicted_proba",
                        title: str = "modality attribution (Shapley)") -> Path:
    """Per-sample Shapley values of each modality (box + strip), and the mean pairwise interactions where computed."""
    plt = pyplot()
    part = frame[frame["quantity"] == quantity]
    pairs = [c for c in part.columns if c.startswith("interaction_")]
    fig, axes = plt.subplots(1, 2 if pairs else 1, figsize=(9 if pairs else 5, 3.4), squeeze=False, width_ratios=[3, 2] if pairs else None)
    ax = axes[0, 0]
    data = [part[f"shapley_{m}"].to_numpy() for m in modalities]
    ax.boxplot(data, showfliers=False)
    rng = np.random.default_rng(0)
    for j, d in enumerate(data):
        d = d[rng.permutation(len(d))[:400]]
        ax.scatter(j + 1 + rng.uniform(-0.15, 0.15, len(d)), d, s=4, alpha=0.4, color=COLOURS[j % 8], marker=MARKERS[j % 8])
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(1, len(modalities) + 1), list(modalities))
    ax.set_ylabel("Shapley value")
    ax.set_title(f"per sample: {quantity}")
    if pairs:
        bx = axes[0, 1]
        means = [part[c].mean() for c in pairs]
        labels = [c[len("interaction_"):].replace("_x_", " × ") for c in pairs]
        bx.barh(range(len(pairs)), means, height=0.5, color=[COLOURS[0] if v >= 0 else COLOURS[1] for v in means], edgecolor="black",
                hatch=["" if v >= 0 else "//" for v in means])
        bx.set_ylim(-0.75, len(pairs) - 0.25)
        bx.set_yticks(range(len(pairs)), labels)
        bx.axvline(0, color="black", lw=0.8)
        bx.set_xlabel("mean interaction\n(> 0 complementary, < 0 redundant)")
        bx.set_title("pairs")
    fig.suptitle(title)
    return _save(fig, path)


def cost_scaling(frame: pd.DataFrame, path: Path, title: str = "fusion cost against number of modalities") -> Path:
    """Step time and parameters of each fusion method against the number of modalities (``fusion_cost_scaling.csv``)."""
    plt = pyplot()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9, 3.4))
    for i, (method, g) in enumerate(frame.groupby("method", sort=False)):
        g = g.sort_values("modalities")
        style = dict(marker=MARKERS[(i + i // 8) % 8], ms=4, color=COLOURS[i % 8], ls="-" if i < 8 else "--", label=method)
        ax.plot(g["modalities"], g["step_ms"], **style)
        bx.plot(g["modalities"], g["fusion_params"], **style)
    ax.set_xlabel("modalities")
    ax.set_ylabel("training step ms")
    bx.set_xlabel("modalities")
    bx.set_ylabel("fusion parameters")
    ax.set_yscale("log")
    bx.set_yscale("log")
    from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter, ScalarFormatter

    for axis in (ax, bx):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.legend(fontsize=7, ncol=2)
    fig.suptitle(title)
    return _save(fig, path)
