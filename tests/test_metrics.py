"""Our numpy metrics agree with scikit-learn's."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from modalfuse.evaluate import classification_metrics, regression_metrics


@pytest.mark.parametrize("k", [2, 3, 7])
def test_classification_metrics_match_sklearn(k):
    rng = np.random.default_rng(k)
    proba = rng.dirichlet(np.ones(k), size=300)
    y = rng.integers(0, k, 300)
    ours = classification_metrics(y, proba)
    pred = proba.argmax(1)
    assert ours["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert ours["f1"] == pytest.approx(skm.f1_score(y, pred, average="binary" if k == 2 else "macro"))
    assert ours["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=list(range(k))), rel=1e-6)


def test_f1_with_a_class_never_predicted():
    y = np.array([0, 1, 2, 2])
    proba = np.eye(3)[[0, 1, 1, 1]]
    assert classification_metrics(y, proba)["f1"] == pytest.approx(skm.f1_score(y, proba.argmax(1), average="macro", zero_division=0))


def test_regression_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y, p = rng.normal(size=100), rng.normal(size=100)
    ours = regression_metrics(y, p)
    assert ours["mse"] == pytest.approx(skm.mean_squared_error(y, p))
    assert ours["mae"] == pytest.approx(skm.mean_absolute_error(y, p))
    assert ours["r2"] == pytest.approx(skm.r2_score(y, p))
