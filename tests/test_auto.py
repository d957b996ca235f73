"""preset: auto (issue 17): cross-validated choice over a portfolio that always holds the linear baselines."""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import distributed_job  # noqa: E402

from modalfuse.api import MultimodalModel  # noqa: E402
from modalfuse.auto import select  # noqa: E402
from modalfuse.cli import main  # noqa: E402
from modalfuse.config import AutoConfig  # noqa: E402

TRAIN = {"max_epochs": 5, "batch_size": 32, "patience": 0, "val_fraction": 0.0, "progress": False, "threads": 1}


def _model() -> MultimodalModel:
    mods = [{"name": m, "kind": "vector", "columns": c, "encoder": {"dim": 8}} for m, c in distributed_job.COLUMNS.items()]
    return MultimodalModel(mods, "label", {"fusion": {"name": "concat", "dim": 16}}, TRAIN, task="classification")


def test_portfolio_scores_baselines_and_picks_the_best(one_torch_thread):
    chosen, rows = select(_model(), distributed_job.table(150, 0), AutoConfig(folds=2))
    labels = [r["candidate"] for r in rows]
    assert labels[:2] == ["linear logistic (identity encoders)", "linear margin (identity encoders)"]
    assert {"configured recipe", "late fusion MLP", "small concat MLP"} <= set(labels)
    assert sum(bool(r.get("chosen")) for r in rows) == 1 and all(0 <= r["cv_accuracy"] <= 1 for r in rows)
    singles = [r for r in rows if not r.get("pooled")]
    best = max(singles, key=lambda r: (r["cv_accuracy"], -r["cv_log_loss"]))
    if best.get("chosen"):
        assert not chosen.recipes and len(singles) == len(rows)
        if best["candidate"].startswith("linear"):
            assert {m.encoder.name for m in chosen.modalities} == {"identity"} and chosen.model_config.head_hidden == 0
    else:  # a weighted ensemble of several candidates beat the best single one on the out-of-fold predictions
        assert rows[-1].get("chosen") and rows[-1]["candidate"].startswith("weighted ensemble")
        assert len(chosen.recipes) >= 2 and {r.label for r in chosen.recipes} <= set(labels)
        assert abs(sum(r.weight for r in chosen.recipes) - 1) < 1e-9
    assert not chosen.members  # chosen, not yet trained on all rows


def test_trial_budget_keeps_the_baselines(one_torch_thread):
    _, rows = select(_model(), distributed_job.table(90, 0), AutoConfig(folds=2, max_trials=1))
    assert [r["candidate"] for r in rows if not r.get("skipped") and not r.get("pooled")] == \
        ["linear logistic (identity encoders)", "linear margin (identity encoders)"]
    assert [r["skipped"] for r in rows if r.get("skipped")] == ["budget"] * 3 and len(rows) in (5, 6)


def test_cli_train_with_auto_writes_the_choice(tmp_path, capsys, one_torch_thread):
    distributed_job.table(120, 0).to_csv(tmp_path / "train.csv", index=False)
    distributed_job.table(40, 2).to_csv(tmp_path / "test.csv", index=False)
    cfg = {"data": {"train": "train.csv", "test": "test.csv", "target": "label", "task": "classification", "cache_dir": "none"},
           "modalities": [{"name": m, "kind": "vector", "columns": c} for m, c in distributed_job.COLUMNS.items()],
           "preset": "auto", "auto": {"folds": 2, "max_trials": 3}, "train": TRAIN}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", str(tmp_path / "cfg.yaml"), "--run-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "auto: linear logistic" in out and "test: accuracy=" in out
    run = next((tmp_path / "runs").iterdir())
    table = (run / "auto.md").read_text()
    assert "chosen" in table and "skipped (budget)" in table
    choice = yaml.safe_load((run / "auto_choice.yaml").read_text())
    assert choice["preset"] == "none"
    # the choice trains again without the search
    assert main(["train", str(run / "auto_choice.yaml"), "--run-dir", str(tmp_path / "again")]) == 0


def test_linear_baselines_on_timeseries_flatten_the_channels(one_torch_thread):
    """A timeseries-only model still gets both linear baselines: identity encoders on the flattened channels × steps."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    frame = pd.DataFrame({"s": [(rng.normal(size=(2, 12)) + 2.0 * y[i] * np.sin(np.arange(12))).astype(np.float32) for i in range(60)],
                          "label": y})
    model = MultimodalModel([{"name": "s", "kind": "timeseries", "columns": ["s"], "options": {"length": 12}}], "label",
                            {"fusion": {"name": "concat", "dim": 16}}, {**TRAIN, "max_epochs": 30, "lr": 0.05}, task="classification")
    _, rows = select(model, frame, AutoConfig(folds=2, max_trials=2))
    assert [r["candidate"] for r in rows if not r.get("skipped")] == ["linear logistic (identity encoders)", "linear margin (identity encoders)"]
    assert min(r["cv_accuracy"] for r in rows[:2]) > 0.8  # the class is a fixed pattern over the steps: linear in them



def _cli_run(tmp_path, rows: int, storage: str = "auto", **top) -> tuple[int, Path]:
    """``modalfuse train`` on a ``rows``-row table with the top-level config keys ``top``: exit code, run folder."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    distributed_job.table(rows, 0).to_csv(tmp_path / "train.csv", index=False)
    cfg = {"data": {"train": "train.csv", "target": "label", "task": "classification", "cache_dir": "none", "storage": storage},
           "modalities": [{"name": m, "kind": "vector", "columns": c} for m, c in distributed_job.COLUMNS.items()],
           "train": TRAIN, **top}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    code = main(["train", str(tmp_path / "cfg.yaml"), "--run-dir", str(tmp_path / "runs")])
    runs = list((tmp_path / "runs").iterdir()) if (tmp_path / "runs").exists() else []
    return code, runs[0] if runs else tmp_path


def test_auto_is_the_default_of_a_config_without_a_model_section(tmp_path, capsys, one_torch_thread):
    code, run = _cli_run(tmp_path, 120, auto={"folds": 2, "max_trials": 1})
    out = capsys.readouterr().out
    assert code == 0 and "auto: the config chooses no model" in out and "auto: linear logistic" in out
    assert "chosen" in (run / "auto.md").read_text()
    assert yaml.safe_load((run / "config.yaml").read_text())["preset"] == "auto"  # the saved config repeats the search


def test_the_default_skips_the_search_on_small_tables_and_when_a_model_is_chosen(tmp_path, capsys, one_torch_thread):
    code, run = _cli_run(tmp_path / "small", 40)
    out = capsys.readouterr().out
    assert code == 0 and "40 labelled training rows, fewer than auto.min_rows = 100" in out
    assert not (run / "auto.md").exists() and yaml.safe_load((run / "config.yaml").read_text())["preset"] == "none"
    code, run = _cli_run(tmp_path / "chosen", 120, model={"fusion": {"name": "late"}})
    assert code == 0 and "auto:" not in capsys.readouterr().out and not (run / "auto.md").exists()
    code, run = _cli_run(tmp_path / "streamed", 120, storage="disk")
    assert code == 0 and "streamed from disk (data.storage): the default recipe trains without a search" in capsys.readouterr().out


def test_asked_for_auto_on_too_few_rows_or_streamed_data_is_a_config_error(tmp_path, capsys, one_torch_thread):
    code, _ = _cli_run(tmp_path, 4, preset="auto", auto={"folds": 3})
    assert code != 0
    assert "preset: auto: 4 labelled training rows are too few for 3-fold cross-validation" in capsys.readouterr().err
    code, _ = _cli_run(tmp_path / "streamed", 120, storage="disk", preset="auto")
    assert code != 0 and "preset: auto holds the training table in memory for its folds" in capsys.readouterr().err


def test_a_signal_during_the_search_exits_with_its_code_and_writes_nothing(tmp_path, capsys, monkeypatch, one_torch_thread):
    import signal

    import modalfuse.auto
    from modalfuse.cli.interrupt import Interrupted

    def stopped(model, change):  # the signal handler raises Interrupted inside the first candidate's training
        raise Interrupted(signal.SIGTERM)

    monkeypatch.setattr(modalfuse.auto, "derive", stopped)
    code, run = _cli_run(tmp_path, 120)
    err = capsys.readouterr().err
    assert code == 143 and "stopped by SIGTERM while choosing the recipe (preset: auto); nothing was written" in err
    assert run == tmp_path  # no run folder


RAY_SCRIPT = """
import json, sys
sys.path.insert(0, {tests!r})
import torch
torch.set_num_threads(1)
import distributed_job
from test_auto import _model
from modalfuse.auto import select
from modalfuse.config import AutoConfig
out = {{}}
for engine in ("local", "ray"):
    _, rows = select(_model(), distributed_job.table(90, 0), AutoConfig(folds=2, max_trials=3, engine=engine, ensemble_rounds=0))
    out[engine] = [{{k: v for k, v in r.items() if k != "seconds"}} for r in rows]
import ray
out["ray_ran"] = ray.is_initialized()  # the ray engine started (or joined) a Ray instance
print("ROWS " + json.dumps(out))
"""


def test_ray_engine_scores_the_candidates_as_the_local_one(tmp_path):
    """auto.engine: ray runs one Ray Tune trial per candidate (in a subprocess here, with a timeout): the same
    out-of-fold scores as one after another in this process, and the trial budget skips the same candidates."""
    import json
    import os
    import subprocess

    import pytest

    pytest.importorskip("ray.tune")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_DEDUP_LOGS": "0", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
           "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", RAY_SCRIPT.format(tests=str(HERE))], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=420)
    line = next((s for s in done.stdout.splitlines() if s.startswith("ROWS ")), None)
    assert done.returncode == 0 and line, done.stdout[-2000:] + done.stderr[-3000:]
    rows = json.loads(line[5:])
    assert rows["ray_ran"] and rows["ray"] == rows["local"]
    assert [r["candidate"] for r in rows["ray"] if r.get("skipped")] == ["late fusion MLP", "small concat MLP"]
