"""Data-parallel training (issue 17): 2 CPU processes (gloo) match 1 process with the same global batch and seed.

Lightning's ``ddp`` re-runs the calling script (pytest itself) in every rank, so the 2-process runs start in fresh
interpreters: ``ddp_spawn`` from a small job script, and the CLI under ``torchrun``; both with a timeout.
Tolerance: with dropout off, every rank takes its half of each shuffled global batch and DDP averages the gradients,
so only float summation order differs: probabilities within 1e-5, validation losses within 1e-5 per epoch.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import distributed_job  # noqa: E402

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def test_two_spawned_processes_match_one(tmp_path, one_torch_thread):
    one = distributed_job.run(1, tmp_path / "one")
    done = subprocess.run([sys.executable, str(HERE / "distributed_job.py"), str(tmp_path / "two.json"), "2"],
                          env=ENV, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    two = json.loads((tmp_path / "two.json").read_text())
    assert "Starting with 2 processes" in done.stderr + done.stdout  # really two ranks
    np.testing.assert_allclose(two["proba"], one["proba"], atol=1e-5)
    np.testing.assert_allclose(two["val_loss"], one["val_loss"], atol=1e-5)
    assert two["history"]["best_epoch"] == one["history"]["best_epoch"] and two["history"]["epochs"] == one["history"]["epochs"] == 4
    assert abs(two["evaluate"]["accuracy"] - one["evaluate"]["accuracy"]) < 1e-9
    assert "sync_dist" not in done.stderr and not two["warnings"]
    # the run folder is written once, by one process: one metrics row per epoch, the reports of the parent
    rows = pd.read_csv(tmp_path / "run2" / "metrics.csv")
    assert list(rows["epoch"]) == [0, 1, 2, 3]
    assert one["files"] == two["files"] == ["checkpoints", "metrics.csv", "train_report.json", "val_report.json"]
    kept = sorted((tmp_path / "run2" / "checkpoints").iterdir())
    assert len(kept) == 2  # written by rank zero only, pruned to the newest two

    # resume the 2-process run from its second-newest checkpoint, under 2 processes and under 1 (another world size)
    for devices in (2, 1):
        again = tmp_path / f"resumed{devices}"
        shutil.copytree(tmp_path / "run2", again)
        newest = sorted((again / "checkpoints").iterdir())[-1]
        shutil.rmtree(newest)
        if devices == 2:
            done = subprocess.run([sys.executable, str(HERE / "distributed_job.py"), str(again / "out.json"), "2", str(again)],
                                  env=ENV, capture_output=True, text=True, timeout=240)
            assert done.returncode == 0, done.stderr[-3000:]
            resumed = json.loads((again / "out.json").read_text())
            assert resumed["proba"] == two["proba"]  # the same ranks, the same batches: bit-identical
        else:
            resumed = distributed_job.run(1, again, resume=True)
            np.testing.assert_allclose(resumed["proba"], two["proba"], atol=1e-5)  # only float summation order differs
        assert Path(resumed["history"]["resumed_from"]).name == kept[0].name  # the older checkpoint, after epoch 3 of 4
        assert resumed["history"]["epochs"] == 4
        assert list(pd.read_csv(again / "metrics.csv")["epoch"]) == [0, 1, 2, 3]

    # from on-disk shards: the parent decodes once, each rank reads only the rows of its slice of every batch
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run([sys.executable, str(HERE / "distributed_job.py"), str(disk / "two.json"), "2", "--disk"],
                          env=ENV, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    np.testing.assert_allclose(json.loads((disk / "two.json").read_text())["proba"], one["proba"], atol=1e-5)


def test_cli_under_torchrun_writes_one_run_folder(tmp_path):
    for name, n, seed in (("train.csv", 320, 0), ("test.csv", 64, 2)):
        distributed_job.table(n, seed).to_csv(tmp_path / name, index=False)
    cfg = {"data": {"train": "train.csv", "test": "test.csv", "target": "label", "task": "classification", "cache_dir": "none"},
           "modalities": [{"name": m, "kind": "vector", "columns": c, "encoder": {"dim": 8}} for m, c in distributed_job.COLUMNS.items()],
           "train": {"max_epochs": 3, "batch_size": 32, "patience": 0, "progress": False, "threads": 1},
           "preset": "none"}  # one network under torchrun (the recipe search has its own tests)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "modalfuse.cli", "train", str(tmp_path / "cfg.yaml"), "--run-dir", str(tmp_path / "runs")]
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in done.stderr
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1, runs  # rank 1 made no run folder of its own
    assert done.stdout.count("run folder:") == 1 and done.stdout.count("test: accuracy=") == 1
    run = runs[0]
    assert (run / "model" / "model.json").is_file() and (run / "summary.json").is_file()
    assert list(pd.read_csv(run / "metrics.csv")["epoch"]) == [0, 1, 2]  # one writer: one row per epoch
    # rank zero wrote the checkpoints; every rank resumes from them (here from the one before the last)
    kept = sorted((run / "checkpoints").iterdir())
    assert len(kept) == 2
    shutil.rmtree(kept[-1])
    done = subprocess.run(cmd[:-2] + ["--resume", str(run)], env=ENV, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(list((tmp_path / "runs").iterdir())) == 1 and done.stdout.count("test: accuracy=") == 1
    assert list(pd.read_csv(run / "metrics.csv")["epoch"]) == [0, 1, 2]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [k.name for k in kept]  # the last epoch written again


def test_ddp_without_a_launcher_is_refused_in_words():
    from modalfuse.config import TrainConfig
    from modalfuse.errors import ConfigError
    from modalfuse.train.distributed import strategy_settings

    with pytest.raises(ConfigError, match="train.strategy: ddp without a launcher.*torchrun"):
        strategy_settings(TrainConfig(devices=2, strategy="ddp"))
    assert strategy_settings(TrainConfig(devices=2))["strategy"]._start_method == "spawn"
    assert strategy_settings(TrainConfig())["strategy"] == "auto"
