"""Calibration: expected calibration error, NLL, Brier score, temperature scaling, reliability diagram."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def expected_calibration_error(proba: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """ECE with equal-width confidence bins: Σ_b (n_b / n) · |accuracy_b − confidence_b|."""
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def brier_score(proba: np.ndarray, y: np.ndarray) -> float:
    """Mean over samples of Σ_k (p_k − 1[y = k])²."""
    onehot = np.eye(proba.shape[1])[y]
    return float(((proba - onehot) ** 2).sum(axis=1).mean())


def negative_log_likelihood(proba: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, 1.0)).mean())


def calibration_metrics(proba: np.ndarray, y: np.ndarray, bins: int = 15) -> dict[str, float]:
    return {"ece": expected_calibration_error(proba, y, bins), "nll": negative_log_likelihood(proba, y), "brier": brier_score(proba, y)}


def fit_temperature(logits: np.ndarray, y: np.ndarray, max_iter: int = 200) -> float:
    """The temperature T > 0 that minimises the NLL of softmax(logits / T) (fit on validation data)."""
    z = torch.as_tensor(logits, dtype=torch.float64)
    target = torch.as_tensor(y, dtype=torch.long)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(z / log_t.exp(), target)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp())


def reliability_diagram(proba: np.ndarray, y: np.ndarray, path: str | Path, bins: int = 15, title: str = "") -> Path:
    """Accuracy per confidence bin against the diagonal, with the share of samples per bin."""
    import os

    path = Path(path)
    os.environ.setdefault("MPLCONFIGDIR", str(path.parent / ".mplconfig"))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    acc = np.array([correct[which == b].mean() if (which == b).any() else np.nan for b in range(bins)])
    share = np.array([(which == b).mean() for b in range(bins)])
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(5, 6), height_ratios=[3, 1], sharex=True)
    ax.bar(edges[:-1], acc, width=1 / bins, align="edge", edgecolor="black", label="accuracy")
    ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title} ECE {expected_calibration_error(proba, y, bins):.3f}".strip())
    ax.legend(loc="upper left")
    bx.bar(edges[:-1], share, width=1 / bins, align="edge", color="grey")
    bx.set_xlabel("confidence")
    bx.set_ylabel("share of samples")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
