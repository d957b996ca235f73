"""Task metrics: accuracy, F1, log loss, ECE and Brier for classification; MSE, MAE and R² for regression.

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
    }
