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
    best = max(rows, key=lambda r: (r["cv_accuracy"], -r["cv_log_loss"]))
    assert best.get("chosen") and sum(bool(r.get("chosen")) for r in rows) == 1
    assert all(0 <= r["cv_accuracy"] <= 1 for r in rows)
    if best["candidate"].startswith("linear"):
        assert {m.encoder.name for m in chosen.modalities} == {"identity"} and chosen.model_config.head_hidden == 0
    assert not chosen.members  # chosen, not yet trained on all rows


def test_trial_budget_keeps_the_baselines(one_torch_thread):
    _, rows = select(_model(), distributed_job.table(90, 0), AutoConfig(folds=2, max_trials=1))
    assert [r["candidate"] for r in rows if not r.get("skipped")] == ["linear logistic (identity encoders)", "linear margin (identity encoders)"]
    assert all(r["skipped"] == "budget" for r in rows[2:]) and len(rows) == 5


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

