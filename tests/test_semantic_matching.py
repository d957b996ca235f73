"""Semantic matching: class-posterior embeddings per modality, whitening, and class-level cross-modal retrieval."""
from __future__ import annotations

import numpy as np
import pytest

from modalfuse.align import SemanticMatching
from modalfuse.align.semantic import whitening
from modalfuse.evaluate.retrieval import cross_modal_metrics


def two_modalities(n_per_class: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Four classes seen through two different random linear views (dims 6 and 9) with noise."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(4), n_per_class)
    latent = np.eye(4)[labels] * 3 + rng.normal(size=(len(labels), 4))
    views = {"image": latent @ rng.normal(size=(4, 6)), "text": latent @ rng.normal(size=(4, 9)) + rng.normal(scale=0.5, size=(len(labels), 9))}
    return views, labels


def test_embeddings_are_square_roots_of_class_posteriors():
    views, labels = two_modalities(30, 0)
    sm = SemanticMatching(C=1.0, whiten=["text"]).fit(views, labels)
    emb = sm.embed(views["text"], "text")
    assert emb.shape == (120, 4)
    assert np.allclose((emb ** 2).sum(axis=1), 1.0)
    assert np.array_equal(sm.classes, np.arange(4))
    assert np.mean(emb.argmax(axis=1) == labels) > 0.9


def test_whitening_gives_identity_covariance_on_plenty_of_rows():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5000, 3)) @ np.array([[2.0, 0.0, 0.0], [1.5, 0.5, 0.0], [0.0, 0.3, 4.0]])
    mean, matrix = whitening(x)
    white = (x - mean) @ matrix
    cov = np.cov(white, rowvar=False, bias=True)
    assert np.allclose(cov - np.diag(np.diag(cov)), 0.0, atol=1e-8)  # decorrelated
    assert np.allclose(np.diag(cov), 1.0, atol=0.08)  # unit variance, up to the Ledoit–Wolf shrinkage


def test_class_level_retrieval_across_modalities():
    views, labels = two_modalities(60, 2)
    rows = np.random.default_rng(0).permutation(len(labels))
    fit, held = rows[:160], rows[160:]
    train, train_labels = {k: v[fit] for k, v in views.items()}, labels[fit]
    test, test_labels = {k: v[held] for k, v in views.items()}, labels[held]
    sm = SemanticMatching(C={"image": 0.1, "text": 1.0}, whiten=["text"]).fit(train, train_labels)
    metrics = cross_modal_metrics(sm.embed(test["image"], "image"), sm.embed(test["text"], "text"), test_labels, ("image", "text"))
    assert metrics["image→text/class_R@1"] > 0.9 and metrics["text→image/class_R@1"] > 0.9


def test_unknown_modality_and_row_mismatch_are_refused():
    views, labels = two_modalities(10, 3)
    with pytest.raises(ValueError, match="'text' has 39 rows for 40 labels"):
        SemanticMatching().fit({"image": views["image"], "text": views["text"][:-1]}, labels)
    sm = SemanticMatching().fit(views, labels)
    with pytest.raises(KeyError, match="'audio'"):
        sm.embed(views["image"], "audio")
