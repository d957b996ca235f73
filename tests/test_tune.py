"""`modalfuse tune` (issue 17): a 2-trial sweep on Ray Tune in a subprocess, interrupted and resumed with finished trials kept."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import distributed_job  # noqa: E402

from modalfuse.errors import ConfigError  # noqa: E402
from modalfuse.tune import SearchConfig, apply_params  # noqa: E402


def test_apply_params_reaches_nested_keys_and_modalities():
    raw = {"model": {"fusion": {"name": "concat"}}, "train": {"lr": 0.1}, "modalities": [{"name": "a"}, {"name": "b"}]}
    out, mods = apply_params(raw, {"model.fusion.name": "late", "train.lr": 0.01, "modalities.*.encoder.dim": 32, "modalities.b.encoder.name": "x"})
    assert out["model"]["fusion"]["name"] == "late" and out["train"]["lr"] == 0.01
    assert [m["encoder"] for m in out["modalities"]] == [{"dim": 32}, {"dim": 32, "name": "x"}]
    assert raw["train"]["lr"] == 0.1  # a copy
    with pytest.raises(ValueError, match="no modality named 'c'"):
        apply_params(raw, {"modalities.c.encoder.dim": 3})


def test_search_section_errors_name_the_key(tmp_path):
    from modalfuse.tune.sweep import read_sweep

    with pytest.raises(ValueError, match="train.lr.loguniform: bounds"):
        SearchConfig(space={"train.lr": {"loguniform": [0, 1]}})
    with pytest.raises(ValueError, match="model.dropout: expected one of"):
        SearchConfig(space={"model.dropout": {"normal": [0, 1]}})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"data": {"dataset": "handwritten"}, "search": {"space": {"train.lr": {"choice": [0.1]}}, "mode": "up"}}))
    with pytest.raises(ConfigError, match="search.mode"):
        read_sweep(tmp_path / "c.yaml")


def test_two_trials_in_a_subprocess_interrupted_and_resumed(tmp_path):
    pytest.importorskip("ray.tune")
    distributed_job.table(200, 0).to_csv(tmp_path / "train.csv", index=False)
    cfg = {"data": {"train": "train.csv", "target": "label", "task": "classification", "cache_dir": "none"},
           "modalities": [{"name": m, "kind": "vector", "columns": c, "encoder": {"dim": 8}} for m, c in distributed_job.COLUMNS.items()],
           "train": {"batch_size": 32, "patience": 0, "threads": 1, "val_fraction": 0.2},
           # grid, one at a time: trial 0 takes 1 epoch, trial 1 takes 400, so it is running when the sweep is interrupted
           "search": {"metric": "val_loss", "algorithm": "grid", "max_concurrent": 1, "scheduler": {"name": "none"},
                      "space": {"train.max_epochs": {"grid": [1, 400]}}}}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "modalfuse.cli", "tune", "sweep.yaml", "-o", "out"]
    first = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sweep = tmp_path / "out" / "ray" / "sweep"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not any(p.stat().st_size for p in sweep.glob("trial_*_00001/result.json")):
        time.sleep(0.5)
    first.send_signal(signal.SIGINT)
    out = first.communicate(timeout=120)[0]
    assert first.returncode == 130, out[-2000:]
    assert "interrupted: 1 trial(s) unfinished" in out
    kept = next(sweep.glob("trial_*_00000/result.json")).read_bytes()
    assert pd.read_csv(tmp_path / "out" / "results.csv").set_index("status").index.tolist().count("done") == 1

    second = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    assert "2/2 trials finished" in second.stdout and "(resumed)" in second.stdout
    assert next(sweep.glob("trial_*_00000/result.json")).read_bytes() == kept  # the finished trial was not run again
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert sorted(table["train.max_epochs"]) == [1, 400] and set(table["status"]) == {"done"}
    assert sorted(table["epochs"]) == [1, 400]
    best = yaml.safe_load((tmp_path / "out" / "best.yaml").read_text())
    assert "search" not in best and best["train"]["max_epochs"] == int(table.sort_values("best val_loss")["train.max_epochs"].iloc[0])
    assert (tmp_path / "out" / "tune.png").stat().st_size > 1000
    assert "| trial | train.max_epochs | best val_loss" in (tmp_path / "out" / "results.md").read_text()
