"""Task metrics: accuracy, F1, log loss, ECE and Brier for classification; MSE, MAE, R², concordance index, Pearson, Spearman and r_m² for regression.

Plain numpy (checked against scikit-learn in the tests): importing scikit-learn costs about a
second, which matters for short runs.
"""
from __future__ import annotations

import numpy as np

from .calibration import brier_score, expected_calibration_error


def f1_score(y_true: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """Binary: F1 of the positive class (1); multiclass: unweighted mean of per-class F1."""
    classes = [1] if n_classes == 2 else range(n_classes)
    scores = []
    for c in classes:
        tp = np.sum((pred == c) & (y_true == c))
        denom = np.sum(pred == c) + np.sum(y_true == c)
        scores.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(scores))


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """``proba`` [n, K]; binary F1 is for the positive (second) class, multiclass F1 is macro."""
    y_true = np.asarray(y_true).astype(int)
    pred = proba.argmax(axis=1)
    clipped = np.clip(proba, 1e-7, 1)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    return {
        "accuracy": float(np.mean(pred == y_true)),
        "f1": f1_score(y_true, pred, proba.shape[1]),
        "log_loss": float(-np.mean(np.log(clipped[np.arange(len(y_true)), y_true]))),
        "ece": expected_calibration_error(proba, y_true),
        "brier": brier_score(proba, y_true),
    }


def regression_metrics(y_true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    y_true, pred = np.asarray(y_true, dtype=float), np.asarray(pred, dtype=float)
    residual = np.sum((y_true - pred) ** 2)
    total = np.sum((y_true - y_true.mean()) ** 2)
    return {
        "mse": float(np.mean((y_true - pred) ** 2)),
        "mae": float(np.mean(np.abs(y_true - pred))),
        "r2": float(1 - residual / total) if len(y_true) > 1 and total > 0 else float("nan"),
        "ci": concordance_index(y_true, pred),
        "pearson": pearson(y_true, pred),
        "spearman": pearson(_ranks(y_true), _ranks(pred)),
        "rm2": rm2(y_true, pred),
    }


def concordance_index(y_true: np.ndarray, pred: np.ndarray) -> float:
    """Share of pairs with y_i > y_j that the predictions order the same way (ties in pred count ½).

    O(n log n): rows sorted by y, a Fenwick tree over prediction ranks counts, for each row, the
    earlier rows (strictly smaller y) with smaller and equal predictions.
    """
    y_true, pred = np.asarray(y_true, dtype=float), np.asarray(pred, dtype=float)
    n = len(y_true)
    order = np.lexsort((pred, y_true))
    y_sorted = y_true[order]
    p_rank = np.unique(pred, return_inverse=True)[1][order] + 1
    tree = np.zeros(int(p_rank.max(initial=0)) + 1, dtype=np.int64)

    def count_at_most(r: int) -> int:
        total = 0
        while r > 0:
            total += tree[r]
            r -= r & -r
        return int(total)

    concordant = ties = pairs = 0.0
    inserted = start = 0
    while start < n:
        stop = start + 1
        while stop < n and y_sorted[stop] == y_sorted[start]:
            stop += 1
        for k in range(start, stop):
            below, at_most = count_at_most(p_rank[k] - 1), count_at_most(p_rank[k])
            concordant += below
            ties += at_most - below
        pairs += (stop - start) * inserted
        for k in range(start, stop):
            r = int(p_rank[k])
            while r < len(tree):
                tree[r] += 1
                r += r & -r
        inserted += stop - start
        start = stop
    return float((concordant + 0.5 * ties) / pairs) if pairs else float("nan")


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean of their positions)."""
    from scipy.stats import rankdata

    return rankdata(x)


def rm2(y_true: np.ndarray, pred: np.ndarray) -> float:
    """Roy's modified r², computed as DeepDTA's evaluation code does: r² · (1 − √|r⁴ − r₀⁴|)."""
    y_true, pred = np.asarray(y_true, dtype=float), np.asarray(pred, dtype=float)
    r = pearson(y_true, pred)
    denominator = np.sum((y_true - y_true.mean()) ** 2)
    if np.isnan(r) or denominator == 0 or not np.any(pred):
        return float("nan")
    k = np.sum(y_true * pred) / np.sum(pred * pred)
    r0 = 1 - np.sum((y_true - k * pred) ** 2) / denominator
    r2 = r * r
    return float(r2 * (1 - np.sqrt(abs(r2 * r2 - r0 * r0))))
