"""Cross-modal retrieval metrics: Recall@k and median rank, per instance and per class.

Instance level: query i's one correct item is gallery item i (its pair). Class level: any gallery
item of the query's class is a hit, so Recall@1 is the accuracy of 1-nearest-neighbour
classification across modalities. Two test-time aids need no labels: ``ensemble_embeddings``
(concatenate several models' unit-norm embeddings) and ``neighbour_rerank`` (gallery-side smoothing).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


def similarity(query: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Cosine similarities [n_query, n_gallery]."""
    q = query / np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
    g = gallery / np.maximum(np.linalg.norm(gallery, axis=1, keepdims=True), 1e-12)
    return q @ g.T


def ensemble_embeddings(parts: Sequence[np.ndarray], weights: Optional[Sequence[float]] = None) -> np.ndarray:
    """Concatenated unit-norm embeddings of several models [n, sum of dims], each row of unit norm.

    The cosine similarity of two concatenations is the ``weights``-weighted mean (default: plain mean) of the
    models' cosine similarities, so a score-level fusion of retrieval models becomes one embedding.
    """
    if not parts:
        raise ValueError("ensemble_embeddings: give at least one embedding array")
    w = np.ones(len(parts)) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (len(parts),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"ensemble_embeddings: need one non-negative weight per part with a positive sum, got {weights}")
    unit = [np.sqrt(wi / w.sum()) * p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12) for wi, p in zip(w, parts)]
    return np.concatenate(unit, axis=1)


def neighbour_rerank(scores: np.ndarray, gallery: np.ndarray, k: int, weight: float = 0.5) -> np.ndarray:
    """Gallery-side re-ranking: ``(1 - weight) * scores + weight * (mean score over each item's k nearest gallery neighbours)``.

    ``scores`` [n_query, n_gallery], ``gallery`` [n_gallery, d] (embeddings; neighbours by cosine, the item itself
    excluded). A query then favours gallery items whose neighbourhood also matches it, which smooths the ranking
    toward dense same-kind regions of the gallery. ``k = 0`` returns ``scores`` unchanged.
    """
    if k < 0 or not 0 <= weight <= 1:
        raise ValueError(f"neighbour_rerank: need k >= 0 (got {k}) and 0 <= weight <= 1 (got {weight})")
    k = min(k, len(gallery) - 1)
    if k <= 0 or weight == 0:
        return scores
    within = similarity(gallery, gallery)
    np.fill_diagonal(within, -np.inf)
    neighbours = np.argsort(-within, axis=1, kind="stable")[:, :k]
    return (1 - weight) * scores + weight * scores[:, neighbours].mean(axis=2)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores per row, best first (ties broken by index)."""
    k = min(k, scores.shape[1])
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def _first_hit_rank(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """1-based rank of the best-ranked relevant gallery item per query (relevant: bool [n_q, n_g])."""
    order = np.argsort(-scores, axis=1, kind="stable")
    hits = np.take_along_axis(relevant, order, axis=1)
    if not hits.any(axis=1).all():
        raise ValueError("every query needs at least one relevant gallery item")
    return hits.argmax(axis=1) + 1


def retrieval_metrics(
    scores: np.ndarray,
    query_labels: Optional[np.ndarray] = None,
    gallery_labels: Optional[np.ndarray] = None,
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """Recall@k and median rank from ``scores`` [n_query, n_gallery].

    Instance metrics (``R@k``, ``median_rank``) need a square matrix whose diagonal holds the pairs;
    class metrics (``class_R@k``, ``class_median_rank``) need both label arrays.
    """
    out: dict[str, float] = {}
    relevant = []
    if scores.shape[0] == scores.shape[1]:
        relevant.append(("", np.eye(len(scores), dtype=bool)))
    if query_labels is not None and gallery_labels is not None:
        relevant.append(("class_", np.asarray(query_labels)[:, None] == np.asarray(gallery_labels)[None, :]))
    if not relevant:
        raise ValueError("retrieval_metrics: give a square score matrix (pairs on the diagonal) or labels for both sides")
    for prefix, rel in relevant:
        ranks = _first_hit_rank(scores, rel)
        for k in ks:
            out[f"{prefix}R@{k}"] = float(np.mean(ranks <= k))
        out[f"{prefix}median_rank"] = float(np.median(ranks))
    return out


def cross_modal_metrics(
    a: np.ndarray,
    b: np.ndarray,
    labels: Optional[np.ndarray] = None,
    names: tuple[str, str] = ("a", "b"),
    ks: Sequence[int] = (1, 5, 10),
    rerank_k: int = 0,
    rerank_weight: float = 0.5,
) -> dict[str, float]:
    """Both directions between paired embeddings ``a`` and ``b`` (row i of each is a pair): keys ``a→b/R@1`` etc.

    ``rerank_k`` > 0 applies ``neighbour_rerank`` over the gallery side of each direction.
    """
    scores = similarity(a, b)
    out = {}
    for direction, s, gallery in ((f"{names[0]}→{names[1]}", scores, b), (f"{names[1]}→{names[0]}", scores.T, a)):
        s = neighbour_rerank(s, gallery, rerank_k, rerank_weight)
        for key, value in retrieval_metrics(s, labels, labels, ks).items():
            out[f"{direction}/{key}"] = value
    return out
