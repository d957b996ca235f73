"""Class prototypes in the shared space: zero-shot from text, few-shot by a Gaussian conjugate update.

Model: the embeddings of class c are x ~ N(μ_c, σ²I) and the class mean has the prior
μ_c ~ N(μ0_c, σ0²I), with μ0_c the zero-shot prototype (the embedded class description). After k
examples the posterior mean is (τ0·μ0_c + Σ xᵢ) / (τ0 + k) with τ0 = σ²/σ0²: τ0 = 0 is the
prototype from data only, τ0 → ∞ the prior only. :func:`fit_prior` estimates τ0 (and the scale of
μ0) on classes with many examples. σ0² must be the prior's error on classes the prior map never saw: a text
map trained on the seen classes puts their prototypes near their means, so measuring σ0² there makes τ0 far
too large. :func:`leave_one_out_priors` gives such honest priors for the seen classes: each one is predicted
from its description's frozen features by a ridge map fitted on the other seen classes only. The update is
done on the raw unit-norm embeddings (class means lie inside the sphere, hence the prior scale) and is not
renormalised: prototypes are compared by cosine, so only their direction matters.
"""
from __future__ import annotations

import numpy as np


def class_means(embeddings: np.ndarray, labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Mean embedding of each class in ``classes`` [n_classes, d]."""
    return np.stack([embeddings[labels == c].mean(axis=0) for c in classes])


def nearest_prototype(embeddings: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    """Index of the most cosine-similar prototype for each embedding."""
    e = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    p = prototypes / np.maximum(np.linalg.norm(prototypes, axis=1, keepdims=True), 1e-12)
    return (e @ p.T).argmax(axis=1)


def posterior_mean(prior_mean: np.ndarray, shots: np.ndarray, tau0: float) -> np.ndarray:
    """Conjugate Gaussian update of one class mean: (τ0·μ0 + Σ xᵢ) / (τ0 + k) for shots [k, d]."""
    if tau0 < 0:
        raise ValueError(f"tau0 must be >= 0, got {tau0}")
    k = len(shots)
    if k == 0:
        return np.asarray(prior_mean, dtype=np.float64)
    return (tau0 * np.asarray(prior_mean, dtype=np.float64) + np.asarray(shots, dtype=np.float64).sum(axis=0)) / (tau0 + k)


def leave_one_out_priors(features: np.ndarray, targets: np.ndarray, ridge: float = 0.1) -> np.ndarray:
    """Unit-norm prior of each class as predicted without that class [n_classes, d].

    Row c is the ridge regression from the (cosine-normalised, centred) description features [n_classes, f] to
    the class means ``targets`` [n_classes, d], fitted on every class but c, applied to c's features, then
    normalised to unit length like a zero-shot prototype. ``ridge`` is relative to the mean kernel diagonal.
    """
    x = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    out = np.empty_like(targets, dtype=np.float64)
    for c in range(len(x)):
        rest = np.arange(len(x)) != c
        xr, yr = x[rest], targets[rest].astype(np.float64)
        x_mean, y_mean = xr.mean(axis=0), yr.mean(axis=0)
        kernel = (xr - x_mean) @ (xr - x_mean).T
        lam = ridge * max(float(np.trace(kernel)) / len(kernel), 1e-12)
        weights = np.linalg.solve(kernel + lam * np.eye(len(kernel)), yr - y_mean)
        out[c] = y_mean + ((x[c] - x_mean) @ (xr - x_mean).T) @ weights
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def fit_prior(embeddings: np.ndarray, labels: np.ndarray, prior_means: np.ndarray, classes: np.ndarray) -> tuple[float, float]:
    """Empirical-Bayes fit of the prior on classes with many examples (the training classes): ``(scale, tau0)``.

    ``prior_means`` must come from a prior that did not see those classes (e.g. :func:`leave_one_out_priors`),
    so that σ0² is the error to expect on a new class.

    Unit-norm embeddings have class means inside the sphere, so the prior mean of class c is
    ``scale · μ0_c`` with the least-squares ``scale``. σ² is the pooled within-class variance per
    dimension; σ0² is the mean squared distance per dimension between a class mean and its prior
    mean, less the sampling noise σ²/n_c of that mean; τ0 = σ²/σ0².
    """
    means = class_means(embeddings, labels, classes)
    counts = np.array([np.sum(labels == c) for c in classes])
    scale = float((means * prior_means).sum() / (prior_means ** 2).sum())
    d = embeddings.shape[1]
    within = sum(((embeddings[labels == c] - m) ** 2).sum() for c, m in zip(classes, means))
    sigma2 = float(within / ((counts.sum() - len(classes)) * d))
    gaps = ((means - scale * prior_means) ** 2).sum(axis=1) / d
    sigma0_2 = float(np.mean(gaps - sigma2 / counts))
    return scale, sigma2 / max(sigma0_2, 1e-12)
