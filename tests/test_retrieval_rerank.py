"""Test-time retrieval aids: embedding ensembles and gallery-side neighbour re-ranking."""
from __future__ import annotations

import numpy as np
import pytest

from modalfuse.evaluate.retrieval import cross_modal_metrics, ensemble_embeddings, neighbour_rerank, retrieval_metrics, similarity


def test_ensemble_similarity_is_the_mean_of_the_models_similarities() -> None:
    rng = np.random.default_rng(0)
    a1, a2, b1, b2 = (rng.normal(size=(6, d)) for d in (3, 5, 3, 5))
    joint = similarity(ensemble_embeddings([a1, a2]), ensemble_embeddings([b1, b2]))
    np.testing.assert_allclose(joint, (similarity(a1, b1) + similarity(a2, b2)) / 2, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(ensemble_embeddings([a1, a2]), axis=1), 1.0)
    weighted = similarity(ensemble_embeddings([a1, a2], [3, 1]), ensemble_embeddings([b1, b2], [3, 1]))
    np.testing.assert_allclose(weighted, 0.75 * similarity(a1, b1) + 0.25 * similarity(a2, b2), atol=1e-12)
    with pytest.raises(ValueError):
        ensemble_embeddings([])
    with pytest.raises(ValueError):
        ensemble_embeddings([a1, a2], [1.0])


def test_neighbour_rerank_matches_hand_computed_blend() -> None:
    gallery = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    scores = np.array([[0.2, 0.8, 0.5]])
    # nearest other item: 0 <-> 1, and 2 -> 1 (cosine 0.11 beats 0)
    out = neighbour_rerank(scores, gallery, k=1, weight=0.5)
    np.testing.assert_allclose(out, [[0.5 * 0.2 + 0.5 * 0.8, 0.5 * 0.8 + 0.5 * 0.2, 0.5 * 0.5 + 0.5 * 0.8]])
    np.testing.assert_array_equal(neighbour_rerank(scores, gallery, k=0), scores)
    with pytest.raises(ValueError):
        neighbour_rerank(scores, gallery, k=1, weight=1.5)


def test_neighbour_rerank_demotes_an_isolated_item_whose_neighbours_do_not_match() -> None:
    # Two tight gallery clusters (classes 0 and 1) plus a class-0 item off on its own, nearest to the query.
    rng = np.random.default_rng(1)
    c0 = np.array([1.0, 0.0, 0.0]) + 0.05 * rng.normal(size=(5, 3))
    c1 = np.array([0.0, 1.0, 0.0]) + 0.05 * rng.normal(size=(5, 3))
    gallery = np.vstack([c0, c1, [[0.3, 0.0, 0.954]]])
    labels = np.array([0] * 5 + [1] * 5 + [0])
    query, query_label = np.array([[0.0, 0.6, 0.8]]), np.array([1])
    scores = similarity(query, gallery)
    assert retrieval_metrics(scores, query_label, labels)["class_R@1"] == 0.0
    assert retrieval_metrics(neighbour_rerank(scores, gallery, k=3, weight=0.7), query_label, labels)["class_R@1"] == 1.0


def test_cross_modal_metrics_rerank_option_changes_only_when_asked() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(20, 4)), rng.normal(size=(20, 4))
    labels = np.repeat(np.arange(4), 5)
    assert cross_modal_metrics(a, b, labels, ("x", "y"), rerank_k=0) == cross_modal_metrics(a, b, labels, ("x", "y"))
    scores = neighbour_rerank(similarity(b, a), a, 3, 0.5)
    expected = retrieval_metrics(scores, labels, labels)
    got = cross_modal_metrics(a, b, labels, ("x", "y"), rerank_k=3, rerank_weight=0.5)
    assert all(got[f"y→x/{k}"] == v for k, v in expected.items())
