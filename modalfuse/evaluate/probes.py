"""Unimodal probes: what each frozen encoder of a fused model knows on its own.

A logistic regression (on standardised embeddings) is fitted per modality on the training rows'
embeddings and scored on the test rows', each on the rows where that modality is present. A
modality starved by a dominant one ("modality collapse") shows a low probe accuracy.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..data.dataset import Features
from ..errors import fitted
from ..train import batches


@torch.no_grad()
def modality_embeddings(model: Any, data: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """Per-modality embeddings [n, d] of a fitted model's (first) network, presence masks [n], and targets [n]."""
    features = data if isinstance(data, Features) else model.featurize(data)
    net = fitted(model.net)
    net.eval()
    parts: dict[str, list[torch.Tensor]] = {m: [] for m in net.encoders}
    for batch in batches(features, 256, shuffle=False):
        emb = net.embed(batch)
        for m in parts:
            parts[m].append(emb[m])
    embeddings = {m: torch.cat(v).numpy() for m, v in parts.items()}
    masks = {m: features.masks[m].numpy().astype(bool) for m in parts}
    return embeddings, masks, features.target.numpy()


def modality_probes(model: Any, train: Any, test: Any, C: float = 1.0, max_iter: int = 2000) -> dict[str, float]:
    """Test accuracy of a logistic-regression probe on each modality's frozen embeddings, fitted on ``train``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if model.task != "classification":
        raise ValueError("modality probes are for classification models")
    tr_emb, tr_mask, tr_y = modality_embeddings(model, train)
    te_emb, te_mask, te_y = modality_embeddings(model, test)
    result = {}
    for m in tr_emb:
        if not tr_mask[m].any() or not te_mask[m].any():
            continue
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
        probe.fit(tr_emb[m][tr_mask[m]], tr_y[tr_mask[m]])
        result[m] = float(probe.score(te_emb[m][te_mask[m]], te_y[te_mask[m]]))
    return result
