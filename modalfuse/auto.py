"""``preset: auto``: choose the recipe by k-fold cross-validation on the training rows over a small portfolio.

The portfolio always holds linear baselines (identity encoders on the vector and timeseries modalities, the latter
flattened, + a linear softmax, i.e. multinomial logistic regression, and a linear margin head, i.e. a linear SVM, both
on the standardised features the preprocessors produce; the configured epochs, learning rate at least 3e-3), the configured recipe (concat
fusion by default), late fusion, and for small data (under 2,000 training rows) a narrower, more regularised concat MLP. Every candidate is trained on k-1 folds and
scored on the held-out fold (stratified for classification): accuracy over all out-of-fold predictions (ties: mean
log loss), or the out-of-fold RMSE for regression. The test split is never read. Ensemble selection (Caruana et al.
2004, as AutoGluon does) then adds candidates greedily, with replacement, to a weighted mean of their out-of-fold
probabilities (``auto.ensemble_rounds`` rounds); where that mix scores better than the best single candidate on the same
pooled out-of-fold predictions, the winner is that weighted ensemble (``recipes``), else the best candidate. Its
cross-validated score is optimistic: the weights were chosen on the same predictions. The winner is then trained on all
training rows as usual. Budget: ``auto.budget_s`` seconds or ``auto.max_trials`` candidates, linear baselines first.
``modalfuse train`` runs it by default for a config with no model section (``select(..., implicit=True)``).
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Optional

import numpy as np
from .config import AutoConfig
from .encoders import ENCODERS


#: (label, is a linear baseline, how to derive the candidate from the configured model)
Candidate = tuple[str, bool, Callable[[Any, int, AutoConfig], Optional[dict[str, Any]]]]


def _linear(head: str) -> Callable[[Any, int, AutoConfig], Optional[dict[str, Any]]]:
    def make(model, n: int, options: AutoConfig) -> Optional[dict[str, Any]]:
        kinds = ENCODERS.get("identity").kinds  # vector, timeseries (flattened)
        if model.task != "classification" and head == "margin":
            return None
        if not any(m.kind in kinds for m in model.modalities):
            return None
        mods = [m.model_copy(update={"encoder": m.encoder.model_copy(update={"name": "identity", "options": {}})}, deep=True)
                if m.kind in kinds else m for m in model.modalities]
        cfg = {"fusion": {"name": "concat", "dim": 16}, "head_hidden": 0, "dropout": 0.0}
        if head == "margin":
            cfg.update(head="margin", margin_l2=1.0 / max(1, n))  # a linear SVM with C = 1
        return {"modalities": mods, "model": cfg, "train": {"lr": max(model.train_config.lr, 3e-3)}}
    return make


def _fusion(name: str) -> Callable[[Any, int, AutoConfig], Optional[dict[str, Any]]]:
    return lambda model, n, options: {"model": {"fusion": {"name": name}}}


def _small(model, n: int, options: AutoConfig) -> Optional[dict[str, Any]]:
    if n >= options.small_rows:
        return None
    mods = []
    for m in model.modalities:
        enc = m.encoder
        opts = dict(enc.options)
        if enc.name == "vector_mlp":
            opts.update(hidden=[64], dropout=0.3)
        mods.append(m.model_copy(update={"encoder": enc.model_copy(update={"dim": min(enc.dim, 32), "options": opts})}, deep=True))
    return {"modalities": mods, "model": {"fusion": {"name": "concat", "dim": 64}, "head_hidden": 0, "dropout": 0.2}}


PORTFOLIO: list[Candidate] = [
    ("linear logistic (identity encoders)", True, _linear("default")),
    ("linear margin (identity encoders)", True, _linear("margin")),
    ("configured recipe", False, lambda model, n, options: {}),
    ("late fusion MLP", False, _fusion("late")),
    ("small concat MLP", False, _small),
]


def derive(model, change: dict[str, Any], recipes: Optional[list] = None):
    """A fresh MultimodalModel like ``model`` with ``change`` (modalities, model / train overrides) applied;
    ``recipes``, a weighted ensemble's (``RecipeConfig``s)."""
    from .api import MultimodalModel

    model_cfg = model.model_config.model_dump()
    for key, value in change.get("model", {}).items():
        model_cfg[key] = {**model_cfg[key], **value} if isinstance(value, dict) and isinstance(model_cfg.get(key), dict) else value
    if "fusion" in change.get("model", {}) and "options" not in change["model"]["fusion"]:
        model_cfg["fusion"]["options"] = {}
    train_cfg = {**model.train_config.model_dump(), **change.get("train", {})}
    out = MultimodalModel(change.get("modalities", model.modalities), model.target, model_cfg, train_cfg,
                          model.requested_task, model.on_error, None, model.na_values, recipes=recipes)
    out.cache, out.callbacks = model.cache, list(model.callbacks)
    return out


def select(model, data: Any, options: Optional[AutoConfig] = None, log: Callable[[str], None] = lambda s: None,
           implicit: bool = False):
    """(chosen model, unfitted; table of every candidate's cross-validated scores) for ``model``'s modalities and target.

    ``implicit``: the preset was not asked for but is the default; a table of fewer than ``options.min_rows`` labelled
    rows, or one the fit streams from disk, then gives (``model``, None): no search, the configured recipe trains.
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    from .data import infer_task
    from .data.readers import as_frame
    from .data.storage import choose_storage
    from .data.target import require_target
    from .errors import ConfigError

    options = options or AutoConfig()
    if choose_storage(model.storage, data, model.preprocessors, model.memory_budget_gb) == "disk":
        if implicit:
            log("auto: the training table is streamed from disk (data.storage): the default recipe trains without a search")
            return model, None
        raise ConfigError("preset: auto holds the training table in memory for its folds; with data.storage: disk "
                          "(or a table larger than data.memory_budget_gb) set preset: none")
    frame, table, base = as_frame(data, model.na_values)
    frame = frame.reset_index(drop=True)
    require_target(frame.get(model.target), model.target, list(frame.columns))
    labelled = int(frame[model.target].notna().sum())
    if implicit and labelled < options.min_rows:
        log(f"auto: {labelled} labelled training rows, fewer than auto.min_rows = {options.min_rows}: the default recipe "
            "trains without a search")
        return model, None
    if labelled < 2 * options.folds:
        raise ConfigError(f"preset: auto: {labelled} labelled training rows are too few for {options.folds}-fold "
                          f"cross-validation (at least {2 * options.folds}); lower auto.folds or set preset: none")
    if implicit:
        log(f"auto: the config chooses no model: {options.folds}-fold cross-validation picks the recipe "
            "(preset: none trains the default one directly)")
    model.task_ = infer_task(frame[model.target], table) if model.requested_task == "auto" else model.requested_task
    y = frame[model.target]
    stratify = model.task == "classification" and y.value_counts().min() >= options.folds
    splitter = (StratifiedKFold if stratify else KFold)(options.folds, shuffle=True, random_state=options.seed)
    folds = list(splitter.split(frame, y if stratify else None))
    classes = sorted(y.dropna().unique().tolist()) if model.task == "classification" else None
    n_train = int(len(frame) * (options.folds - 1) / options.folds)
    candidates = [(label, baseline, change) for label, baseline, make in PORTFOLIO
                  if (change := make(model, n_train, options)) is not None]
    run = _on_ray if options.engine == "ray" else _locally
    scores = run(model, candidates, (frame, table, base), folds, classes, options, log)
    rows, chosen, oof = [], None, {}
    for label, baseline, change in candidates:
        if label not in scores:
            rows.append({"candidate": label, "skipped": "budget"})
            continue
        row, pred = scores[label]
        row = {"candidate": label, "baseline": baseline, **row}
        rows.append(row)
        oof[label] = (pred, change)
        if chosen is None or _better(row, chosen[0], model.task):
            chosen = (row, change)
    mix = ensemble(model, oof, y, classes, chosen[0]["candidate"], options.ensemble_rounds)
    if mix is not None:
        row, recipes = mix
        rows.append(row)
        log(f"auto: {row['candidate']}: " + ", ".join(f"{k}={v:.4f}" for k, v in row.items() if k.startswith("cv_")))
        row["chosen"] = True
        return derive(model, oof[recipes[0][0]][1], [recipe for _, recipe in recipes]), rows
    chosen[0]["chosen"] = True
    return derive(model, chosen[1]), rows


def _log_row(log: Callable[[str], None], label: str, row: dict) -> None:
    log(f"auto: {label}: " + ", ".join(f"{k}={v:.4f}" for k, v in row.items() if k.startswith("cv_")) + f" ({row['seconds']} s)")


def _locally(model, candidates: list, data: tuple, folds: list, classes: Optional[list], options: AutoConfig,
             log: Callable[[str], None]) -> dict[str, tuple[dict, np.ndarray]]:
    """{label: (scores, out-of-fold predictions)} of the candidates, one after another in this process; after the
    budget (seconds or trials) only the linear baselines still run."""
    out, start = {}, time.perf_counter()
    for label, baseline, change in candidates:
        over = (options.budget_s is not None and time.perf_counter() - start > options.budget_s) or \
               (options.max_trials is not None and len(out) >= options.max_trials)
        if over and not baseline:
            continue
        out[label] = cross_validate(model, change, data, folds, classes)
        _log_row(log, label, out[label][0])
    return out


def _on_ray(model, candidates: list, data: tuple, folds: list, classes: Optional[list], options: AutoConfig,
            log: Callable[[str], None]) -> dict[str, tuple[dict, np.ndarray]]:
    """The same on Ray Tune (``auto.engine: ray``): one trial per candidate, one CPU each, in parallel on a local Ray
    or the cluster at ``auto.address``; the linear baselines first with no budget, then the rest within what is left
    of ``auto.budget_s`` (Ray's experiment time budget) and ``auto.max_trials``."""
    import os
    import shutil
    import tempfile

    from .errors import ConfigError

    try:
        import ray
        from ray import tune
    except ModuleNotFoundError:
        raise ConfigError("auto.engine: ray needs Ray Tune; pip install 'modalfuse[tune]'") from None
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
    ray.init(address=options.address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
             **({} if options.address else {"num_cpus": os.cpu_count()}))
    from .tune.sweep import trial_folder

    changes = {label: change for label, _, change in candidates}
    trainable = tune.with_resources(tune.with_parameters(_trial, model=model, changes=changes, data=data, folds=folds, classes=classes),
                                    {"cpu": 1})
    storage, out, start = tempfile.mkdtemp(prefix="modalfuse-auto-"), {}, time.perf_counter()
    try:
        baselines = [c for c in candidates if c[1]]
        others = [c for c in candidates if not c[1]]
        if options.max_trials is not None:
            others = others[:max(0, options.max_trials - len(baselines))]
        for i, (batch, budget) in enumerate(((baselines, None), (others, options.budget_s))):
            if budget is not None:
                budget -= time.perf_counter() - start
            if not batch or (budget is not None and budget <= 0):
                continue
            tuner = tune.Tuner(trainable, param_space={"candidate": tune.grid_search([label for label, _, _ in batch])},
                               tune_config=tune.TuneConfig(time_budget_s=budget, reuse_actors=True, trial_dirname_creator=trial_folder),
                               run_config=tune.RunConfig(name=f"auto{i}", storage_path=storage, verbose=0))
            for result in tuner.fit():
                if result.error is not None:  # the time budget stops trials without an error; this is the candidate's
                    raise RuntimeError(f"auto: candidate {result.config['candidate']!r} failed on Ray Tune: {result.error}")
                if result.error is None and result.metrics and "out_of_fold" in result.metrics:
                    m = result.metrics
                    row = {k: m[k] for k in ("seconds", "cv_accuracy", "cv_log_loss", "cv_rmse") if k in m}
                    out[result.config["candidate"]] = (row, np.asarray(m["out_of_fold"], dtype=float))
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    out = {label: out[label] for label, _, _ in candidates if label in out}  # portfolio order, as the local engine
    for label, (row, _) in out.items():
        _log_row(log, label, row)
    return out


def _trial(config: dict, model, changes: dict, data: tuple, folds: list, classes: Optional[list]) -> dict:
    """One Ray Tune trial: the candidate's cross-validation, one torch thread (the trial holds one CPU)."""
    import torch

    torch.set_num_threads(1)
    row, pred = cross_validate(model, changes[config["candidate"]], data, folds, classes)
    return {**row, "out_of_fold": np.where(np.isnan(pred), None, pred).tolist()}


def cross_validate(model, change: dict, data: tuple, folds: list, classes: Optional[list]) -> tuple[dict, np.ndarray]:
    """(scores, out-of-fold predictions) of the candidate ``change`` of ``model``: fitted on k−1 folds of ``data``
    (frame, table name, base folder), scored on the held-out one; accuracy over all rows and the mean per-fold log
    loss, or the RMSE."""
    from .data.readers import Table

    frame, table, base = data
    t0, correct, losses, sq = time.perf_counter(), 0, [], 0.0
    pred = np.full((len(frame), len(classes)) if classes is not None else len(frame), np.nan)
    for tr, va in folds:
        candidate = derive(model, change)
        candidate.train_config = candidate.train_config.model_copy(update={"progress": False})
        candidate.fit(Table(frame.iloc[tr], table, base))
        features = candidate.featurize(Table(frame.iloc[va], table, base))
        metrics = candidate.evaluate(features)
        _out_of_fold(pred, candidate, features, classes)
        if classes is not None:
            correct += round(metrics["accuracy"] * metrics["n"])
            losses.append(metrics.get("log_loss", math.nan))
        else:
            sq += metrics["mse"] * metrics["n"]
    row: dict[str, Any] = {"seconds": round(time.perf_counter() - t0, 1)}
    if classes is not None:
        row.update(cv_accuracy=correct / len(frame), cv_log_loss=float(np.nanmean(losses)) if losses else math.nan)
    else:
        row.update(cv_rmse=math.sqrt(sq / len(frame)))
    return row, pred


def _out_of_fold(pred: np.ndarray, candidate, features, classes: Optional[list]) -> None:
    """Write a fitted fold model's predictions on its held-out rows (``features.rows``) into ``pred``: the class
    probabilities in the order of ``classes`` (a class the fold never saw stays 0), or the predicted values."""
    res = candidate.results(features)
    rows = np.asarray(features.rows, dtype=int)
    if classes is None:
        pred[rows] = np.asarray(res["prediction"], dtype=float)
        return
    pred[rows] = 0.0
    for j, cls in enumerate(candidate.target_encoder.classes):
        pred[rows, classes.index(cls)] = res["proba"][:, j]


def _score(pred: np.ndarray, y: np.ndarray, classification: bool) -> tuple[float, float]:
    """Larger is better: (accuracy, −log loss) of probabilities, or (−RMSE, 0) of predictions; y as class indices."""
    if classification:
        p = np.clip(pred[np.arange(len(y)), y], 1e-12, 1.0)
        return float((pred.argmax(axis=1) == y).mean()), float(np.log(p).mean())
    return -float(np.sqrt(((pred - y) ** 2).mean())), 0.0


def greedy_selection(preds: list[np.ndarray], y: np.ndarray, classification: bool, rounds: int) -> tuple[list[int], tuple]:
    """Caruana et al. (2004) ensemble selection: each round adds (with replacement) the prediction whose addition to
    the running mean scores best; returns the counts per prediction of the best-scoring prefix and its score."""
    counts, total, current, best = [0] * len(preds), 0, None, None
    for _ in range(rounds):
        step = None
        for i, p in enumerate(preds):
            trial = p if current is None else (current * total + p) / (total + 1)
            score = _score(trial, y, classification)
            if step is None or score > step[0]:
                step = (score, i, trial)
        counts[step[1]] += 1
        total, current = total + 1, step[2]
        if best is None or step[0] > best[1]:
            best = (list(counts), step[0])
    return best


def ensemble(model, oof: dict[str, tuple[np.ndarray, dict]], y, classes: Optional[list], single: str, rounds: int):
    """(table row, [(label, RecipeConfig)]) of the weighted ensemble ensemble selection finds over the candidates whose
    heads combine with the best single one's, where it beats that candidate on the pooled out-of-fold predictions;
    else None."""
    from .config import RecipeConfig
    from .heads import HEADS, averages_alike, resolve_head

    if rounds < 2 or len(oof) < 2:
        return None
    classification = classes is not None
    n_out = len(classes) if classification else 1

    def head_class(change: dict):
        cfg = derive(model, change).model_config
        return HEADS.get(resolve_head(model.task, n_out, cfg.head))

    first = head_class(oof[single][1])
    labels = [label for label, (_, change) in oof.items() if averages_alike(head_class(change), first)]
    covered = np.all([np.isfinite(oof[label][0]).reshape(len(y), -1).all(axis=1) for label in labels], axis=0)
    target = np.array([classes.index(v) for v in y[covered]]) if classification else y[covered].to_numpy(float)
    preds = [oof[label][0][covered] for label in labels]
    counts, score = greedy_selection(preds, target, classification, rounds)
    if sum(1 for c in counts if c) < 2 or score <= _score(preds[labels.index(single)], target, classification):
        return None
    recipes = []
    for label, count in sorted(zip(labels, counts), key=lambda lc: -lc[1]):
        if count:
            member = derive(model, oof[label][1])
            recipes.append((label, RecipeConfig(label=label, weight=count / sum(counts), model=member.model_config,
                                                encoders={m.name: m.encoder for m in member.modalities},
                                                train=oof[label][1].get("train", {}))))
    name = "weighted ensemble (" + ", ".join(f"{r.label} {r.weight:.2f}" for _, r in recipes) + ")"
    row: dict[str, Any] = {"candidate": name, "baseline": False, "seconds": 0.0, "pooled": True}
    if classification:
        row.update(cv_accuracy=score[0], cv_log_loss=-score[1])
    else:
        row.update(cv_rmse=-score[0])
    return row, recipes


def _better(row: dict, best: dict, task: str) -> bool:
    if task == "classification":
        return (row["cv_accuracy"], -row["cv_log_loss"]) > (best["cv_accuracy"], -best["cv_log_loss"])
    return row["cv_rmse"] < best["cv_rmse"]


def markdown(rows: list[dict], options: AutoConfig) -> str:
    """The candidates' table, the chosen one marked."""
    keys = [k for k in ("cv_accuracy", "cv_log_loss", "cv_rmse") if any(k in r for r in rows)]
    lines = [f"# preset: auto — {options.folds}-fold cross-validation on the training rows (fold seed {options.seed})", "",
             "| candidate | " + " | ".join(keys) + " | seconds | |", "|---|" + "---|" * (len(keys) + 2)]
    for r in rows:
        if r.get("skipped"):
            lines.append(f"| {r['candidate']} | " + " | ".join("" for _ in keys) + f" | | skipped ({r['skipped']}) |")
        else:
            seconds = "pooled out-of-fold" if r.get("pooled") else r["seconds"]
            lines.append(f"| {r['candidate']} | " + " | ".join(f"{r[k]:.4f}" for k in keys) + f" | {seconds} | {'chosen' if r.get('chosen') else ''} |")
    return "\n".join(lines) + "\n"
