"""The benchmark harness end to end on a tiny run, and its config validation."""
from __future__ import annotations

import pandas as pd
import pytest

from modalfuse.errors import ConfigError
from modalfuse.evaluate.benchmark import BenchmarkConfig, load_benchmark, run_benchmark


def test_benchmark_writes_table_csv_and_plot(tmp_path, shared_data):
    cfg = BenchmarkConfig.model_validate({
        "name": "tiny",
        "dataset": "handwritten",
        "data_dir": str(shared_data),
        "unimodal": False,
        "seeds": [0, 1],
        "methods": [{"fusion": {"name": "concat"}}, {"fusion": {"name": "late"}, "label": "late, 2 members", "train": {"ensemble": 2}}],
        "train": {"max_epochs": 1, "val_fraction": 0.0, "patience": 0, "progress": False},
        "threads": 1,
        "notes": "a note for the reader",
    })
    frame = run_benchmark(cfg, "pytest", tmp_path, progress=False)
    assert list(frame["method"]) == ["concat", "concat", "late, 2 members", "late, 2 members"]
    assert frame["accuracy"].between(0.5, 1.0).all()  # one epoch already learns the digits
    assert (frame["params"] > 0).all() and (frame["peak_rss_mb"] > 50).all()
    md = (tmp_path / "tiny.md").read_text()
    assert "a note for the reader" in md and "| late, 2 members |" in md and "command: `pytest`" in md
    assert len(pd.read_csv(tmp_path / "tiny.csv")) == 4
    assert (tmp_path / "tiny.png").stat().st_size > 1000


def test_benchmark_config_typo_is_reported(tmp_path):
    path = tmp_path / "b.yaml"
    path.write_text("name: x\ndataset: handwritten\nmethods: [{fusion: {name: concat}}]\nseed: [1]\n")
    with pytest.raises(ConfigError, match="seed.*did you mean 'seeds'"):
        load_benchmark(path)
