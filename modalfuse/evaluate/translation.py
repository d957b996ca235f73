"""Scores for translation between modalities (one modality's values predicted from others): per-feature Pearson
correlation for continuous values (genes, proteins), per-feature and pooled AUROC for binary ones (peaks)."""
from __future__ import annotations

import numpy as np


def per_feature_pearson(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Pearson r of each column (feature) over the rows (cells); NaN for a column constant in either."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    if pred.shape != true.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from the observed {true.shape}")
    p, t = pred - pred.mean(axis=0), true - true.mean(axis=0)
    denom = np.sqrt((p ** 2).sum(axis=0) * (t ** 2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (p * t).sum(axis=0) / denom
    r[denom == 0] = np.nan
    return r


def per_feature_auroc(prob: np.ndarray, true: np.ndarray, min_positives: int = 5) -> np.ndarray:
    """AUROC of each column (rank formula, ties averaged); NaN where a column has fewer than ``min_positives``
    positives or negatives."""
    from scipy.stats import rankdata

    prob, y = np.asarray(prob, np.float64), np.asarray(true) > 0
    out = np.full(prob.shape[1], np.nan)
    pos = y.sum(axis=0)
    neg = y.shape[0] - pos
    ok = np.flatnonzero((pos >= min_positives) & (neg >= min_positives))
    if len(ok):
        ranks = rankdata(prob[:, ok], axis=0)
        out[ok] = ((ranks * y[:, ok]).sum(axis=0) - pos[ok] * (pos[ok] + 1) / 2) / (pos[ok] * neg[ok])
    return out


def pooled_auroc(prob: np.ndarray, true: np.ndarray) -> float:
    """One AUROC over every (cell, feature) entry."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.asarray(true).ravel() > 0, np.asarray(prob).ravel()))


def summary(values: np.ndarray) -> dict[str, float]:
    """Mean, median and count of the finite per-feature scores."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    return {"mean": float(v.mean()) if len(v) else float("nan"), "median": float(np.median(v)) if len(v) else float("nan"), "n": int(len(v))}
