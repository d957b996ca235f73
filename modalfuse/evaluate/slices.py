"""Metrics per slice (values of chosen columns, modality-presence patterns) with bootstrap confidence intervals.

Each metric here is a mean of per-sample scores (accuracy = mean of 0/1 correctness, log loss, absolute
or squared error), so a slice's bootstrap replicate is the mean of a resample of its samples. The gap of a
slice to the overall metric is ``m_slice − m_all``; since the overall metric mixes the slice and the rest,
its bootstrap replicates come from resampling the slice and the rest independently. Intervals are
percentile intervals at the 1 − ``alpha`` level.

The p-value of a gap comes from a permutation test: how often a random set of the same number of samples
(drawn without replacement from all of them) deviates from the overall metric at least as much, with the
usual +1 correction so it is never 0. Unlike a bootstrap of the slice it stays right for small slices at the
edge (14 samples all correct cannot be told apart from luck when 92 % are). A gap is flagged as significant
when p is below ``alpha`` divided by the number of slices in the table (Bonferroni), so that a table of many
slices does not flag some by chance.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..api import MultimodalModel

HIGHER_IS_BETTER = {"accuracy": True, "log_loss": False, "abs_error": False, "squared_error": False}


def per_sample_scores(task: str, y: np.ndarray, output: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sample scores whose means are the metrics: classification ``output`` = probabilities [n, k]; regression = predictions [n]."""
    if task == "classification":
        y = y.astype(int)
        p_true = np.clip(output[np.arange(len(y)), y], 1e-12, 1.0)
        return {"accuracy": (output.argmax(axis=1) == y).astype(float), "log_loss": -np.log(p_true)}
    err = output.reshape(len(output), -1)[:, 0] - y.reshape(len(y), -1)[:, 0]
    return {"abs_error": np.abs(err), "squared_error": err ** 2}


def presence_patterns(masks: dict[str, np.ndarray]) -> np.ndarray:
    """Per sample, the present modalities joined by '+' (in model order), or 'none'."""
    names = list(masks)
    n = len(next(iter(masks.values()))) if masks else 0
    present = np.stack([np.asarray(masks[k], dtype=bool) for k in names], axis=1) if names else np.zeros((n, 0), bool)
    return np.array(["+".join(k for k, p in zip(names, row) if p) or "none" for row in present], dtype=object)


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # arrays and other containers are values, not missing
        return False


def _means(scores: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    if len(scores) == 0:
        return np.full(n_boot, np.nan)
    return scores[rng.integers(0, len(scores), size=(n_boot, len(scores)))].mean(axis=1)


def _permutation_p(scores: np.ndarray, k: int, observed: float, n_perm: int, rng: np.random.Generator) -> float:
    """Two-sided p-value of a slice of size ``k`` whose mean deviates by ``observed`` from the overall mean."""
    n = len(scores)
    if k == n:
        return 1.0
    overall, hits, done = scores.mean(), 0, 0
    chunk = max(1, 2_000_000 // n)
    while done < n_perm:
        b = min(chunk, n_perm - done)
        pick = rng.random((b, n)).argpartition(k - 1, axis=1)[:, :k]
        hits += int((np.abs(scores[pick].mean(axis=1) - overall) >= abs(observed) - 1e-12).sum())
        done += b
    return (1 + hits) / (1 + n_perm)


def slice_table(
    scores: np.ndarray,
    groups: dict[str, Sequence[Any]],
    metric: str = "accuracy",
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    min_n: int = 1,
) -> pd.DataFrame:
    """One row per (slice column, value): n, metric with CI, gap to overall with CI, permutation p-value, flag.

    ``scores``: per-sample scores [n] (the metric is their mean); ``groups``: slice name → per-sample values.
    Values with fewer than ``min_n`` samples are left out. The first row is the overall metric.
    """
    scores = np.asarray(scores, dtype=np.float64)
    n = len(scores)
    if n == 0:
        raise ConfigError("slices: no samples to score")
    if not 0 < alpha < 1:
        raise ConfigError(f"slices: alpha must be between 0 and 1, got {alpha}")
    rng = np.random.default_rng(seed)
    lo_q, hi_q = 100 * alpha / 2, 100 * (1 - alpha / 2)
    overall = _means(scores, n_boot, rng)
    rows = [{"slice": "overall", "value": "all", "n": n, metric: scores.mean(),
             "ci_low": np.percentile(overall, lo_q), "ci_high": np.percentile(overall, hi_q),
             "gap": 0.0, "gap_low": 0.0, "gap_high": 0.0, "p_value": 1.0, "significant": False}]
    for column, values in groups.items():
        values = np.array(["(missing)" if _missing(v) else str(v) for v in values], dtype=object)
        if len(values) != n:
            raise ConfigError(f"slices: column {column!r} has {len(values)} values for {n} samples")
        for value in sorted(set(values.tolist())):
            inside = values == value
            k = int(inside.sum())
            if k < min_n:
                continue
            s_b, r_b = _means(scores[inside], n_boot, rng), _means(scores[~inside], n_boot, rng)
            m_b = s_b if k == n else (k * s_b + (n - k) * r_b) / n
            gap_b = s_b - m_b
            m_s = scores[inside].mean()
            p = _permutation_p(scores, k, m_s - scores.mean(), n_boot, rng)
            rows.append({"slice": column, "value": value, "n": k, metric: m_s,
                         "ci_low": np.percentile(s_b, lo_q), "ci_high": np.percentile(s_b, hi_q),
                         "gap": m_s - scores.mean(), "gap_low": np.percentile(gap_b, lo_q), "gap_high": np.percentile(gap_b, hi_q),
                         "p_value": p, "significant": False})
    table = pd.DataFrame(rows)
    tested = table["slice"] != "overall"
    table.loc[tested, "significant"] = table.loc[tested, "p_value"] < alpha / max(1, int(tested.sum()))
    return table


def model_slices(
    model: "MultimodalModel",
    data: Any,
    columns: Sequence[str] = (),
    metric: Optional[str] = None,
    *,
    presence: bool = True,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    min_n: int = 1,
) -> pd.DataFrame:
    """Score a model on labelled ``data`` and tabulate ``metric`` (default accuracy / abs_error) per value of
    each of ``columns`` (any columns of the table, used by the model or not) and per modality-presence pattern."""
    from ..data.readers import as_frame

    frame, table, base = as_frame(data)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(f"slices: columns {missing} are not in the table (it has {list(frame.columns)[:20]})")
    features = model._features(None, "slices", frame_table=(frame, table, base))
    out = model.outputs(features)["output"]
    head = model.net.head
    pred = head.proba(out).numpy() if model.task == "classification" else head.predict(out).numpy()
    scores = per_sample_scores(model.task, features.target.numpy(), pred)
    metric = metric or ("accuracy" if model.task == "classification" else "abs_error")
    if metric not in scores:
        raise ConfigError(f"slices: metric {metric!r} is not one of {sorted(scores)} for {model.task}")
    kept = frame.loc[features.rows]
    groups: dict[str, Sequence[Any]] = {c: kept[c].tolist() for c in columns}
    if presence:
        groups["modalities present"] = presence_patterns({k: v.numpy() for k, v in features.masks.items()}).tolist()
    return slice_table(scores[metric], groups, metric, n_boot=n_boot, alpha=alpha, seed=seed, min_n=min_n)


def markdown(table: pd.DataFrame, percent: bool = True) -> str:
    """The table as Markdown: metric [CI], gap [CI], p, and a '*' where the gap is significant."""
    metric = [c for c in table.columns if c not in ("slice", "value", "n", "ci_low", "ci_high", "gap", "gap_low", "gap_high", "p_value", "significant")][0]
    f = 100.0 if percent else 1.0
    unit = " %" if percent else ""
    lines = [f"| slice | value | n | {metric}{unit} [95 % CI] | gap to overall{unit} [CI] | p | significant |", "|---|---|---:|---:|---:|---:|:---:|"]
    for r in table.itertuples(index=False):
        d = r._asdict()
        lines.append(
            f"| {d['slice']} | {d['value']} | {d['n']} | {d[metric] * f:.2f} [{d['ci_low'] * f:.2f}, {d['ci_high'] * f:.2f}] | "
            f"{d['gap'] * f:+.2f} [{d['gap_low'] * f:+.2f}, {d['gap_high'] * f:+.2f}] | {d['p_value']:.3f} | {'*' if d['significant'] else ''} |"
        )
    return "\n".join(lines)
