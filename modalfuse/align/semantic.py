"""Semantic matching (Rasiwasia et al., ACM MM 2010): each modality mapped to its vector of class posteriors.

A multinomial logistic regression per modality, fitted on labelled training rows, turns an item into
p(class | item); two items from different modalities match when their posteriors agree. The embedding is
√p (unit norm), so the cosine of two embeddings is the Bhattacharyya coefficient Σ_c √(p_c q_c). It retrieves
by class only (no instance detail), so it is meant to be fused with an instance-level space
(``ensemble_embeddings``), as in semantic correlation matching (CCA + semantic matching).

``whiten`` lists modalities whose features are whitened with a Ledoit–Wolf shrinkage covariance before the
regression (the others are standardised); on features with strongly correlated dimensions (doc2vec text) that
lets the L2 penalty act on decorrelated directions, as linear discriminant analysis does.
"""
from __future__ import annotations

from typing import Iterable, Optional

import numpy as np


class SemanticMatching:
    """Per-modality logistic regressions into one class-posterior space: ``fit`` on training rows, then ``embed``."""

    def __init__(self, C: float | dict[str, float] = 1.0, whiten: Iterable[str] = (), max_iter: int = 5000) -> None:
        self.C = C
        self.whiten = set(whiten)
        self.max_iter = max_iter
        self.transforms: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.models: dict = {}
        self.classes: Optional[np.ndarray] = None

    def fit(self, features: dict[str, np.ndarray], labels: np.ndarray) -> "SemanticMatching":
        """``features`` {modality: [n, d]} whose row i is labelled ``labels[i]`` in every modality."""
        from sklearn.linear_model import LogisticRegression

        labels = np.asarray(labels)
        self.classes = np.unique(labels)
        for name, x in features.items():
            x = np.asarray(x, dtype=np.float64)
            if len(x) != len(labels):
                raise ValueError(f"semantic matching: modality {name!r} has {len(x)} rows for {len(labels)} labels")
            self.transforms[name] = whitening(x) if name in self.whiten else _standardising(x)
            c = self.C[name] if isinstance(self.C, dict) else self.C
            self.models[name] = LogisticRegression(C=c, max_iter=self.max_iter).fit(self._prepare(name, x), labels)
        return self

    def _prepare(self, name: str, x: np.ndarray) -> np.ndarray:
        mean, scale = self.transforms[name]  # scale: a whitening matrix, or one factor per feature
        centred = np.asarray(x, dtype=np.float64) - mean
        return centred @ scale if scale.ndim == 2 else centred * scale

    def embed(self, x: np.ndarray, modality: str) -> np.ndarray:
        """√p(class | x) [n, n_classes] in the order of ``classes``; each row has unit norm."""
        if modality not in self.models:
            raise KeyError(f"semantic matching was not fitted on modality {modality!r}; fitted: {sorted(self.models)}")
        return np.sqrt(self.models[modality].predict_proba(self._prepare(modality, x)))


def _standardising(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    std = x.std(axis=0)
    return x.mean(axis=0), 1.0 / np.where(std > 1e-12, std, 1.0)


def whitening(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and matrix W with cov((x - mean) W) = I under the Ledoit–Wolf shrunk covariance."""
    from sklearn.covariance import LedoitWolf

    mean = x.mean(axis=0)
    values, vectors = np.linalg.eigh(LedoitWolf().fit(x - mean).covariance_)
    return mean, vectors / np.sqrt(np.maximum(values, 1e-12))
