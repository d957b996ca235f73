"""Run a sweep on Ray Tune and write what it found: results table, metric-vs-parameter plot, best config YAML.

The experiment lives in OUTPUT/ray/sweep (Ray's own layout); running the same command again after an interruption
restores it there: finished trials are kept, unfinished and errored ones run again.
"""
from __future__ import annotations

import json
import os
import time
from functools import partial
from pathlib import Path
from typing import Any, Optional

import yaml

from ..errors import ConfigError
from .space import SearchConfig, apply_params

NAME = "sweep"


def read_sweep(config: str | Path) -> tuple[dict[str, Any], SearchConfig]:
    """(raw config with absolute data paths, search section) of a YAML file; errors name the key."""
    from pydantic import ValidationError

    from ..config import format_validation_error, load_config

    path = Path(config)
    cfg = load_config(path)  # validates everything but the search section's contents
    raw = yaml.safe_load(path.read_text())
    if not raw.get("search"):
        raise ConfigError(f"{path}: no search section; add search: {{space: {{train.lr: {{loguniform: [0.0003, 0.01]}}}}}}")
    try:
        search = SearchConfig.model_validate(raw["search"])
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, SearchConfig, str(path), "search")) from None
    for key in ("train", "val", "test"):
        if getattr(cfg.data, key):
            raw["data"][key] = str(Path(getattr(cfg.data, key)).resolve())
    return raw, search


def run_sweep(config: str | Path, output: str | Path, data_dir: Optional[str] = None, address: Optional[str] = None) -> dict[str, Any]:
    """Run (or resume) the sweep of ``config``; returns the paths written and the best trial."""
    try:
        import ray
        from ray import tune
    except ModuleNotFoundError:
        raise ConfigError("modalfuse tune needs Ray Tune; pip install 'modalfuse[tune]'") from None
    from .trial import run_trial

    raw, search = read_sweep(config)
    try:
        space = search.ray_space()
    except ValueError as err:
        raise ConfigError(str(err)) from None
    output = Path(output).resolve()
    storage = output / "ray"
    data_dir = str(Path(data_dir).resolve()) if data_dir else None
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")  # trials keep the caller's folder: relative paths still resolve
    ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
             **({} if address else {"num_cpus": os.cpu_count()}))
    trainable = tune.with_resources(partial(run_trial, raw=raw, data_dir=data_dir, search_val=search.val_fraction, cpus=search.cpus_per_trial),
                                    {"cpu": search.cpus_per_trial})
    start = time.perf_counter()
    if tune.Tuner.can_restore(str(storage / NAME)):
        tuner = tune.Tuner.restore(str(storage / NAME), trainable, resume_unfinished=True, resume_errored=True, param_space=space)
        resumed = True
    else:
        tuner = tune.Tuner(trainable, param_space=space, tune_config=_tune_config(search, raw),
                           run_config=tune.RunConfig(name=NAME, storage_path=str(storage), verbose=0))
        resumed = False
    grid = tuner.fit()
    wall = time.perf_counter() - start
    return write_results(grid, search, raw, output, wall, resumed, data_dir)


def _tune_config(search: SearchConfig, raw: dict[str, Any]):
    from ray import tune

    max_epochs = int((raw.get("train") or {}).get("max_epochs", 50))
    if isinstance(search.space.get("train.max_epochs"), dict):
        max_epochs = max(int(v) for v in next(iter(search.space["train.max_epochs"].values())))
    scheduler = None
    if search.scheduler.name == "asha":
        from ray.tune.schedulers import ASHAScheduler

        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=max_epochs, grace_period=min(search.scheduler.grace_period, max_epochs),
                                  reduction_factor=search.scheduler.reduction_factor)
    cpus = os.cpu_count() or 1
    concurrent = search.max_concurrent or max(1, int(cpus // search.cpus_per_trial))
    algo = None
    if search.algorithm == "optuna":
        try:
            import optuna
            from ray.tune.search.optuna import OptunaSearch
        except ModuleNotFoundError:
            raise ConfigError("search.algorithm: optuna needs Optuna; pip install 'modalfuse[tune]'") from None
        from ray.tune.search import ConcurrencyLimiter

        algo = ConcurrencyLimiter(OptunaSearch(sampler=optuna.samplers.TPESampler(seed=search.seed)), concurrent)
    else:  # random and grid: Ray's variant generator, seeded
        from ray.tune.search import BasicVariantGenerator

        algo = BasicVariantGenerator(random_state=search.seed, max_concurrent=concurrent)
    return tune.TuneConfig(metric=search.metric, mode=search.mode, num_samples=1 if search.algorithm == "grid" else search.num_samples,
                           scheduler=scheduler, search_alg=algo, trial_dirname_creator=trial_folder,
                           reuse_actors=True)  # trial workers keep torch, Lightning and the data loaded


def trial_folder(trial) -> str:
    """Short trial folder names (Ray's default spells every parameter out)."""
    return f"trial_{trial.trial_id}"


def _dataset_modalities(raw: dict[str, Any], data_dir: Optional[str]) -> list[dict]:
    from ..datasets import load_dataset

    ds = load_dataset(raw["data"]["dataset"], data_dir=data_dir or raw["data"].get("data_dir"))
    return [m.model_dump(mode="json") for m in ds.modalities]


def write_results(grid, search: SearchConfig, raw: dict[str, Any], output: Path, wall: float, resumed: bool,
                  data_dir: Optional[str] = None) -> dict[str, Any]:
    """results.csv / results.md (one row per trial: parameters, best and last metric, epochs, seconds), tune.png, best.yaml."""
    import pandas as pd

    rows = []
    # the saved experiment state, not the in-memory one: after an interruption Ray still marks running trials TERMINATED
    saved = _saved_statuses(output / "ray" / NAME)
    statuses = [saved.get(t.trial_id, t.status) for t in grid._experiment_analysis.trials]  # same order as the results
    for result, status in zip(grid, statuses):
        state = {"TERMINATED": "done", "ERROR": "error"}.get(status, "interrupted")
        history = result.metrics_dataframe if result.metrics_dataframe is not None else pd.DataFrame()
        row = {"trial": Path(result.path).name if result.path else "?", **(result.config or {}), "status": state}
        if search.metric in history:
            best = history[search.metric].min() if search.mode == "min" else history[search.metric].max()
            row.update({f"best {search.metric}": float(best), f"last {search.metric}": float(history[search.metric].iloc[-1]),
                        "epochs": int(history["epoch"].iloc[-1]), "seconds": float(history["time_total_s"].iloc[-1])})
        rows.append(row)
    table = pd.DataFrame(rows)
    output.mkdir(parents=True, exist_ok=True)
    table.to_csv(output / "results.csv", index=False)
    key = f"best {search.metric}"
    done = table[table["status"] == "done"]
    if key not in done or done.empty:
        raise ConfigError(f"no trial reported {search.metric}; see the trial errors under {output / 'ray' / NAME}")
    done = done.sort_values(key, ascending=search.mode == "min")
    (output / "results.md").write_text(_markdown(done, search, wall, resumed))
    best_params = {k: _plain(done.iloc[0][k]) for k in search.space}
    base = {k: v for k, v in raw.items() if k != "search"}
    if any(k.startswith("modalities.") for k in best_params) and not base.get("modalities"):
        base["modalities"] = _dataset_modalities(base, data_dir)  # written out, so that the chosen encoders are in the file
    best_raw, _ = apply_params(base, best_params)
    (output / "best.yaml").write_text(f"# best trial of {len(table)} by {key} ({search.mode}); from modalfuse tune\n"
                                      + yaml.safe_dump(best_raw, sort_keys=False))
    _plot(done, search, output / "tune.png")
    summary = {"trials": len(table), "finished": int((table["status"] == "done").sum()), "wall_s": round(wall, 1), "resumed": resumed,
               "interrupted": int((table["status"] == "interrupted").sum()),
               "best": {"trial": done.iloc[0]["trial"], key: float(done.iloc[0][key]), "params": best_params}}
    (output / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _saved_statuses(folder: Path) -> dict[str, str]:
    """{trial id: status} from the newest experiment_state-*.json Ray wrote in ``folder``: by the session time in the
    name, not the file time (a resumed run rewrites its predecessor's file too, last)."""
    states = sorted(folder.glob("experiment_state-*.json"))
    if not states:
        return {}
    out = {}
    for entry in json.loads(states[-1].read_text()).get("trial_data", []):
        trial = json.loads(entry[0])
        out[trial.get("trial_id")] = trial.get("status")
    return out


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _markdown(table, search: SearchConfig, wall: float, resumed: bool) -> str:
    cols = ["trial", *search.space, f"best {search.metric}", f"last {search.metric}", "epochs", "seconds"]
    lines = [f"# Sweep: {len(table)} finished trials, {search.algorithm} search, scheduler {search.scheduler.name}",
             "", f"Wall time {wall:.1f} s{' (this resumed run)' if resumed else ''}; sorted by best {search.metric} ({search.mode}).", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def _plot(table, search: SearchConfig, path: Path) -> None:
    """The best metric of each trial against each searched parameter (categorical ones as positions)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(search.space)[:6]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3), squeeze=False)
    for ax, key in zip(axes[0], keys):
        x = table[key]
        if x.dtype == object:
            labels = sorted(map(str, x.unique()))
            ax.set_xticks(range(len(labels)), labels, rotation=30)
            x = x.map(lambda v: labels.index(str(v)))
        elif "loguniform" in search.space[key]:
            ax.set_xscale("log")
        ax.scatter(x, table[f"best {search.metric}"], c=table["epochs"], cmap="viridis")
        ax.set_xlabel(key)
    axes[0][0].set_ylabel(f"best {search.metric}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
