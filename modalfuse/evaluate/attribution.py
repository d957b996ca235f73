"""Modality attribution through the real missing-modality path: leave-one-out, Shapley values, pair interactions.

The value of a coalition S of modalities for one sample is the model's output when only the modalities in S
are marked present (the others go through the same masking the network uses for missing inputs). Two
quantities are explained: the probability of the class predicted with every modality present (the regression
output for regression), and, when labels are given, the per-sample loss (negative log-likelihood of the true
class; squared error for regression).

- leave-one-out: ``v(N) − v(N \\ {i})``;
- Shapley values: exact over all 2^M coalitions for M ≤ ``exact_max`` (8), otherwise estimated from
  ``n_permutations`` random orderings shared by all samples, with the standard error of that mean per sample;
  both add up to ``v(N) − v(∅)`` for every sample (exact up to float rounding: every ordering telescopes);
- the Shapley interaction index of each pair (Grabisch 1997), exact mode only: positive means the two
  modalities are complementary (worth more together), negative that they are redundant.

A modality already missing in a sample is a dummy player there: its values are 0.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import pandas as pd
import torch

from ..data.dataset import Features
from ..errors import ConfigError

if TYPE_CHECKING:
    from ..api import MultimodalModel

EXACT_MAX = 8
"""Up to this many modalities the 2^M coalitions are all evaluated; beyond, orderings are sampled."""


@dataclass
class ModalityAttribution:
    """Per-sample attributions (``frame``: one row per sample and quantity) and how they were computed."""

    frame: pd.DataFrame
    modalities: list[str]
    method: str
    n_permutations: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """Per quantity and modality: mean Shapley value, mean |Shapley|, mean leave-one-out delta, and
        ``share_top``, the share of samples where the modality contributes most: the largest Shapley value of
        the prediction, the most negative of the loss (the modality that lowers the loss most)."""
        rows = []
        for quantity, part in self.frame.groupby("quantity", sort=False):
            phi = part[[f"shapley_{m}" for m in self.modalities]].to_numpy()
            top = (phi.argmin(axis=1) if quantity == "loss" else phi.argmax(axis=1)) if len(phi) else np.zeros(0, dtype=int)
            for j, m in enumerate(self.modalities):
                rows.append({
                    "quantity": quantity, "modality": m, "n": len(part),
                    "mean_shapley": float(phi[:, j].mean()) if len(phi) else math.nan,
                    "mean_abs_shapley": float(np.abs(phi[:, j]).mean()) if len(phi) else math.nan,
                    "mean_loo": float(part[f"loo_{m}"].mean()),
                    "share_top": float((top == j).mean()) if len(phi) else math.nan,
                })
        return pd.DataFrame(rows)

    def interactions(self) -> pd.DataFrame:
        """Mean pairwise interaction index per quantity (empty in sampled mode)."""
        rows = []
        for quantity, part in self.frame.groupby("quantity", sort=False):
            for a, b in itertools.combinations(self.modalities, 2):
                col = interaction_column(a, b)
                if col in part:
                    rows.append({"quantity": quantity, "pair": f"{a} × {b}", "mean_interaction": float(part[col].mean()),
                                 "mean_abs_interaction": float(part[col].abs().mean())})
        return pd.DataFrame(rows)


def interaction_column(a: str, b: str) -> str:
    return f"interaction_{a}_x_{b}"


def shapley_weights(m: int) -> np.ndarray:
    """w[s] = s!(m−s−1)!/m!, the weight of a coalition of size s not holding the player."""
    return np.array([math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m) for s in range(m)])


def exact_shapley(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shapley values [n, M] and interaction indices [n, M, M] from coalition values ``values`` [2^M, n].

    ``values[b]`` is v(S) for the coalition whose members are the set bits of ``b``.
    """
    n_coal = values.shape[0]
    m = n_coal.bit_length() - 1
    if 1 << m != n_coal:
        raise ValueError(f"expected 2^M coalition values, got {n_coal}")
    size = np.array([bin(b).count("1") for b in range(n_coal)])
    w = shapley_weights(m)
    phi = np.zeros((values.shape[1], m))
    for i in range(m):
        bit = 1 << i
        without = np.array([b for b in range(n_coal) if not b & bit], dtype=int)
        phi[:, i] = (w[size[without], None] * (values[without | bit] - values[without])).sum(axis=0)
    inter = np.zeros((values.shape[1], m, m))
    if m >= 2:
        wi = np.array([math.factorial(s) * math.factorial(m - s - 2) / math.factorial(m - 1) for s in range(m - 1)])
        for i, j in itertools.combinations(range(m), 2):
            bi, bj = 1 << i, 1 << j
            rest = np.array([b for b in range(n_coal) if not b & (bi | bj)], dtype=int)
            delta = values[rest | bi | bj] - values[rest | bi] - values[rest | bj] + values[rest]
            inter[:, i, j] = inter[:, j, i] = (wi[size[rest], None] * delta).sum(axis=0)
    return phi, inter


def sampled_shapley(value_of, m: int, n_samples: int, n_permutations: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo Shapley values [n, M] and their standard errors [n, M] from random orderings.

    ``value_of(bitmask)`` returns v(S) for all samples; each ordering's marginal contributions add up to
    v(N) − v(∅), so the estimates do too.
    """
    if n_permutations < 2:
        raise ConfigError("n_permutations: sampled Shapley values need at least 2 orderings for a standard error")
    rng = np.random.default_rng(seed)
    contrib = np.zeros((n_permutations, n_samples, m))
    for p in range(n_permutations):
        coalition, before = 0, value_of(0)
        for i in rng.permutation(m):
            coalition |= 1 << int(i)
            after = value_of(coalition)
            contrib[p, :, i] = after - before
            before = after
    return contrib.mean(axis=0), contrib.std(axis=0, ddof=1) / math.sqrt(n_permutations)


def _as_features(model: "MultimodalModel", data: Any) -> Features:
    if isinstance(data, Features):
        return data
    from ..data.readers import as_frame

    frame, table, base = as_frame(data)
    if model.target in frame.columns:
        return model._features(None, "explain", frame_table=(frame, table, base))
    return model._features(None, "explain", with_target=False, frame_table=(frame, table, base))


class _Game:
    """Coalition values for every sample, evaluated through ``model.outputs`` with presence masked; cached."""

    def __init__(self, model: "MultimodalModel", features: Features) -> None:
        self.model, self.features = model, features
        self.names = list(features.masks)
        self.cache: dict[int, torch.Tensor] = {}

    def output(self, coalition: int) -> torch.Tensor:
        if coalition not in self.cache:
            masks = {name: mask if coalition >> k & 1 else torch.zeros_like(mask) for k, (name, mask) in enumerate(self.features.masks.items())}
            self.cache[coalition] = self.model.outputs(replace(self.features, masks=masks))["output"]
        return self.cache[coalition]


def _quantities(model: "MultimodalModel", game: _Game, labelled: bool) -> dict[str, Any]:
    """quantity name → function(coalition) → per-sample float64 values."""
    head = model.net.head
    full = (1 << len(game.names)) - 1
    y = game.features.target.numpy() if labelled else None
    if model.task == "classification":
        predicted = head.proba(game.output(full)).argmax(dim=1).numpy()
        rows = np.arange(len(predicted))

        def proba(c: int) -> np.ndarray:
            return head.proba(game.output(c)).double().numpy()

        out = {"predicted_proba": lambda c: proba(c)[rows, predicted]}
        if labelled:
            out["loss"] = lambda c: -np.log(np.clip(proba(c)[rows, y.astype(int)], 1e-12, 1.0))
        return out | {"_predicted": predicted}

    def value(c: int) -> np.ndarray:
        pred = head.predict(game.output(c)).double().numpy()
        return pred.reshape(len(pred), -1)[:, 0]

    out = {"prediction": value}
    if labelled:
        target = y.reshape(len(y), -1)[:, 0].astype(np.float64)
        out["loss"] = lambda c: (value(c) - target) ** 2
    return out | {"_predicted": value(full)}


def modality_attribution(
    model: "MultimodalModel",
    data: Any,
    *,
    loss: Optional[bool] = None,
    exact_max: int = EXACT_MAX,
    n_permutations: int = 200,
    seed: int = 0,
) -> ModalityAttribution:
    """Leave-one-out deltas, Shapley values and (exact mode) pair interactions per sample.

    ``data``: labelled or unlabelled table, or :meth:`MultimodalModel.featurize` output. ``loss``
    (default: when labels are there) adds the per-sample loss as a second explained quantity.
    """
    model._require_fitted()
    features = _as_features(model, data)
    labelled = features.target is not None
    if loss and not labelled:
        raise ConfigError(f"explain: loss attribution needs labels, and the data has no {model.target!r} column")
    labelled = labelled if loss is None else bool(loss)
    game = _Game(model, features)
    names, m, n = game.names, len(game.names), len(features)
    quantities = _quantities(model, game, labelled)
    predicted = quantities.pop("_predicted")
    full = (1 << m) - 1
    exact = m <= exact_max
    present = np.stack([features.masks[k].numpy() for k in names], axis=1) if n else np.zeros((0, m), dtype=bool)
    frames = []
    for quantity, fn in quantities.items():
        cache: dict[int, np.ndarray] = {}

        def value_of(c: int) -> np.ndarray:
            if c not in cache:
                cache[c] = fn(c)
            return cache[c]

        frame = pd.DataFrame({"row": features.rows, "quantity": quantity})
        if model.task == "classification":
            frame["predicted"] = model.target_encoder.decode(np.asarray(predicted))
        else:
            frame["predicted"] = np.asarray(predicted)
        if labelled:
            frame["target"] = model.target_encoder.decode(features.target.numpy()) if model.task == "classification" else features.target.numpy().reshape(n, -1)[:, 0]
        frame["value_all"], frame["value_none"] = value_of(full), value_of(0)
        for k, name in enumerate(names):
            frame[f"present_{name}"] = present[:, k]
        for k, name in enumerate(names):
            frame[f"loo_{name}"] = value_of(full) - value_of(full & ~(1 << k))
        if exact:
            phi, inter = exact_shapley(np.stack([value_of(c) for c in range(full + 1)]))
            for k, name in enumerate(names):
                frame[f"shapley_{name}"] = phi[:, k]
            for i, j in itertools.combinations(range(m), 2):
                frame[interaction_column(names[i], names[j])] = inter[:, i, j]
        else:
            phi, se = sampled_shapley(value_of, m, n, n_permutations, seed)
            for k, name in enumerate(names):
                frame[f"shapley_{name}"] = phi[:, k]
                frame[f"shapley_se_{name}"] = se[:, k]
        frames.append(frame)
    info = {"coalitions_evaluated": len(game.cache), "n": n}
    return ModalityAttribution(pd.concat(frames, ignore_index=True), names, "exact" if exact else "sampled", 0 if exact else n_permutations, info)
