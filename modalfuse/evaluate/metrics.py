"""Task metrics: accuracy, F1, log loss, ECE and Brier for classification; MSE, MAE and R² for regression."""
from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from .calibration import brier_score, expected_calibration_error


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """``proba`` [n, K]; binary F1 is for the positive (second) class, multiclass F1 is macro."""
    pred = proba.argmax(axis=1)
    k = proba.shape[1]
    out = {
        "accuracy": float(skm.accuracy_score(y_true, pred)),
        "f1": float(skm.f1_score(y_true, pred, average="binary" if k == 2 else "macro", zero_division=0)),
        "log_loss": float(skm.log_loss(y_true, np.clip(proba, 1e-7, 1), labels=list(range(k)))),
        "ece": expected_calibration_error(proba, y_true),
        "brier": brier_score(proba, y_true),
    }
    return out


def regression_metrics(y_true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {
        "mse": float(skm.mean_squared_error(y_true, pred)),
        "mae": float(skm.mean_absolute_error(y_true, pred)),
        "r2": float(skm.r2_score(y_true, pred)) if len(y_true) > 1 else float("nan"),
    }
