"""Robustness: accuracy under per-modality corruption, over modality subsets, and under view conflict.

Relative robustness is the area under the accuracy-vs-level curve (trapezoid rule, levels in
[0, 1]); effective robustness is the area between that curve and the late-fusion curve
shifted to the same clean accuracy (MultiBench's definitions, without normalising against
other methods' stored curves).
"""
from __future__ import annotations

import itertools
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from ..data.dataset import Features
from .corruptions import CORRUPTIONS, corrupt

if TYPE_CHECKING:
    from ..api import MultimodalModel

LEVELS = [round(0.1 * i, 1) for i in range(11)]


def relative_robustness(levels: list[float], accuracy: list[float]) -> float:
    return float(np.trapezoid(accuracy, levels))


def effective_robustness(levels: list[float], accuracy: list[float], baseline: list[float]) -> float:
    shifted = np.asarray(baseline) - baseline[0] + accuracy[0]
    return float(np.trapezoid(np.asarray(accuracy) - shifted, levels))


def with_inputs(features: Features, name: str, values: torch.Tensor) -> Features:
    return replace(features, inputs={**features.inputs, name: values})


def noise_curves(model: "MultimodalModel", features: Features, levels: list[float] = LEVELS, seed: int = 0) -> pd.DataFrame:
    """Accuracy for every modality × corruption × level, the other modalities left clean."""
    rows = []
    features = features.expanded()
    for modality in model.modalities:
        info = model.preprocessors[modality.name].encoder_info()
        for name in CORRUPTIONS.get(modality.kind, ()):
            for level in levels:
                x = corrupt(modality.kind, name, features.inputs[modality.name], level, seed, info)
                acc = model.evaluate(with_inputs(features, modality.name, x))["accuracy"]
                rows.append({"modality": modality.name, "corruption": name, "level": level, "accuracy": acc})
    return pd.DataFrame(rows)


def subset_accuracy(model: "MultimodalModel", features: Features) -> pd.DataFrame:
    """Accuracy with only each non-empty subset of modalities present (the rest missing)."""
    names = [m.name for m in model.modalities]
    rows = []
    for k in range(len(names), 0, -1):
        for subset in itertools.combinations(names, k):
            masks = {n: n in subset for n in names}
            rows.append({"modalities": "+".join(subset), "count": k, "accuracy": model.evaluate(features, masks=masks)["accuracy"]})
    return pd.DataFrame(rows)


def summarise_curves(curves: pd.DataFrame, baseline: pd.DataFrame | None) -> pd.DataFrame:
    rows = []
    for (modality, name), group in curves.groupby(["modality", "corruption"], sort=False):
        levels, acc = group["level"].tolist(), group["accuracy"].tolist()
        row = {"modality": modality, "corruption": name, "clean": acc[0], "at 1.0": acc[-1], "relative": relative_robustness(levels, acc)}
        if baseline is not None:
            base = baseline[(baseline["modality"] == modality) & (baseline["corruption"] == name)]["accuracy"].tolist()
            row["effective"] = effective_robustness(levels, acc, base)
        rows.append(row)
    return pd.DataFrame(rows)


def conflict_features(features: Features, seed: int = 0, noise_fraction: float = 0.1, noise_sigma: float = 0.5, swap_fraction: float = 0.4,
                      noise_views: str = "all") -> Features:
    """The conflict protocol of RCML (AAAI 2024) on encoded features.

    Gaussian noise (σ = 0.5) on ``noise_fraction`` of the samples, and for ``swap_fraction`` of
    the samples one modality (chosen at random) replaced by that modality of a random sample of
    another class. ``noise_views="all"`` noises every modality of a noisy sample; ``"random"``
    noises a random number (0 … M−1) of randomly chosen modalities, as RCML's released code
    does. RCML min-max scales every feature to [0, 1] before adding noise, so σ is taken
    relative to each feature's range over these samples (our features are standardised instead).
    """
    if noise_views not in ("all", "random"):
        raise ValueError(f"noise_views must be 'all' or 'random', got {noise_views!r}")
    g = np.random.default_rng(seed)
    features = features.expanded()
    n = len(features)
    y = features.target.numpy()
    names = list(features.inputs)
    inputs = {k: v.clone() for k, v in features.inputs.items()}
    masks = {k: v.clone() for k, v in features.masks.items()}
    noisy = g.choice(n, int(round(noise_fraction * n)), replace=False)
    hit = np.zeros((n, len(names)), dtype=bool)
    for i in noisy:
        chosen = g.choice(len(names), g.integers(len(names)), replace=False) if noise_views == "random" else slice(None)
        hit[i, chosen] = True
    gen = torch.Generator().manual_seed(seed)
    for m, name in enumerate(names):
        x = features.inputs[name]
        rows = torch.from_numpy(np.flatnonzero(hit[:, m]))
        if x.is_floating_point() and len(rows):
            span = x.amax(dim=0) - x.amin(dim=0)
            inputs[name][rows] += noise_sigma * span * torch.randn(inputs[name][rows].shape, generator=gen)
    for i in g.choice(n, int(round(swap_fraction * n)), replace=False):
        name = names[g.integers(len(names))]
        donors = np.flatnonzero(y != y[i])
        j = donors[g.integers(len(donors))]
        inputs[name][i] = features.inputs[name][j]
        masks[name][i] = features.masks[name][j]
    return replace(features, inputs=inputs, masks=masks)


def uncertainty_scores(model: "MultimodalModel", features: Features) -> tuple[np.ndarray, np.ndarray]:
    """(correct [n], uncertainty [n]): the head's uncertainty where it has one, else 1 − max probability."""
    res = model.outputs(features)
    head = model.net.head
    out = res["output"]
    correct = (head.predict(out) == features.target).numpy()
    unc = res["uncertainty"].get("aleatoric")
    score = unc.numpy() if unc is not None else 1 - head.proba(out).max(dim=1).values.numpy()
    return correct, score


def conflict_report(model: "MultimodalModel", features: Features, seed: int = 0, noise_views: str = "all") -> dict[str, float]:
    """Accuracy on clean and conflicting test data, and the AUROC of uncertainty for wrong vs right."""
    from sklearn.metrics import roc_auc_score

    conflicted = conflict_features(features, seed, noise_views=noise_views)
    correct, score = uncertainty_scores(model, conflicted)
    auroc = float(roc_auc_score(~correct, score)) if 0 < correct.sum() < len(correct) else float("nan")
    return {"clean": model.evaluate(features)["accuracy"], "conflict": float(correct.mean()), "auroc_uncertainty": auroc}


def plot_curves(curves: pd.DataFrame, baseline: pd.DataFrame | None, path, title: str) -> None:
    import os

    os.environ.setdefault("MPLCONFIGDIR", str(path.parent / ".mplconfig"))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modalities = list(dict.fromkeys(curves["modality"]))
    cols = min(3, len(modalities))
    rows = -(-len(modalities) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), sharey=True, squeeze=False)
    low = min(curves["accuracy"].min(), baseline["accuracy"].min() if baseline is not None else 1.0)
    for ax in axes.flat[len(modalities):]:
        ax.set_visible(False)
    for ax, modality in zip(axes.flat, modalities):
        ax.set_ylim(max(0.0, low - 0.1), 1.0)
        for name, group in curves[curves["modality"] == modality].groupby("corruption", sort=False):
            line = ax.plot(group["level"], group["accuracy"], marker="o", ms=3, label=name)[0]
            if baseline is not None:
                base = baseline[(baseline["modality"] == modality) & (baseline["corruption"] == name)]
                ax.plot(base["level"], base["accuracy"], ls="--", color=line.get_color(), alpha=0.6)
        ax.set_title(modality)
        ax.set_xlabel("corruption level")
        ax.legend(fontsize=7)
    for row in axes:
        row[0].set_ylabel("test accuracy (dashed: late fusion)")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
