"""The benchmark harness end to end on a tiny run, and its config validation."""
from __future__ import annotations

from pathlib import Path

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


CONFIGS = sorted((Path(__file__).resolve().parents[1] / "bench" / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_benchmark_config_runs_one_seed_one_epoch(path, tmp_path, shared_data, monkeypatch):
    """Each shipped benchmark config loads, and every method (and peer, where its package is installed) trains and tests.

    Smoke scale: the first seed, one epoch, at most 40 rows per split, all methods in this process.
    """
    import importlib.util

    cfg = load_benchmark(path)
    cfg.data_dir, cfg.seeds, cfg.limit_rows, cfg.threads = str(shared_data), cfg.seeds[:1], 40, 1
    cfg.train = cfg.train.model_copy(update={"max_epochs": 1, "warmup_epochs": 0, "progress": False})
    for method in cfg.methods:
        method.train = {k: v for k, v in method.train.items() if k not in ("max_epochs", "warmup_epochs")}
        if method.train.get("ensemble", 1) > 1:
            method.train["ensemble"] = 2
        for key in ("mixup", "gradient_modulation"):  # a switch-off epoch past the one epoch run here would not validate
            if (method.train.get(key) or {}).get("until_epoch"):
                method.train[key] = {**method.train[key], "until_epoch": 1}
    cfg.estimators = [e for e in cfg.estimators if importlib.util.find_spec(e.estimator.split(".")[0]) is not None]
    frame = run_benchmark(cfg, "pytest", tmp_path, progress=False, in_process=True)
    expected = [m.title for m in cfg.methods] + [e.label for e in cfg.estimators]
    assert set(expected) <= set(frame["method"])
    metric = "accuracy" if "accuracy" in frame.columns else "mse"
    assert frame[metric].notna().all()
    for names in cfg.drop_at_test:
        column = "without " + " + ".join(names)
        assert column in frame.columns and frame[column].notna().any()
    if cfg.probes:  # one probe column per modality, an accuracy wherever the model has that modality
        for name in {n for m in cfg.methods for n in (m.modalities or m.encoders)}:
            assert frame[f"probe {name}"].between(0, 1).all()
    if cfg.unscored == "prior":  # every test row is scored, those a model cannot use counted apart
        assert frame["test_rows"].nunique() == 1 and (frame["unscored"] >= 0).all()
    assert (tmp_path / f"{cfg.name}.md").read_text().count("\n|") >= len(expected)


def test_further_metrics_become_table_columns():
    """``metrics: [log_loss]`` puts the per-seed log loss (mean ± std over seeds) beside accuracy and F1."""
    import pandas as pd

    from modalfuse.evaluate.benchmark import summarise

    frame = pd.DataFrame({"method": ["a", "a"], "accuracy": [0.9, 0.8], "f1": [0.9, 0.8], "log_loss": [0.2, 0.4], "params": [10, 10],
                          "train_s": [1.0, 1.0], "peak_rss_mb": [5, 5], "latency_ms_batched": [0.1, 0.1], "latency_ms_single": [1.0, 1.0]})
    assert "log_loss" not in summarise(frame).columns
    table = summarise(frame, ["log_loss"])
    assert list(table.columns[:4]) == ["method", "accuracy", "f1", "log_loss"] and table["log_loss"][0] == "0.3000 ± 0.1414"


def test_method_overrides_reach_the_model_and_unusable_rows_get_the_prior(shared_data):
    """A method's modality options and encoders reach the built model; ``unscored: prior`` scores all test rows."""
    import numpy as np

    from modalfuse.datasets import load_dataset
    from modalfuse.evaluate.benchmark import build_model, limited, method_by_label, score_every_row

    cfg = BenchmarkConfig.model_validate({
        "name": "t", "dataset": "womens_clothing", "data_dir": str(shared_data), "on_error": "skip", "seeds": [0],
        "methods": [{"fusion": {"name": "concat"}, "label": "text", "modalities": ["review"],
                     "options": {"review": {"max_tokens": 16, "min_freq": 2}}, "encoders": {"review": {"name": "text_cnn", "dim": 8}}}],
        "train": {"max_epochs": 1, "val_fraction": 0.0, "patience": 0, "progress": False},
    })
    ds = limited(load_dataset("womens_clothing", data_dir=str(shared_data)), 300)
    model = build_model(cfg, method_by_label(cfg, "text"), ds, 0)
    (review,) = model.modalities
    assert (review.options.max_tokens, review.options.min_freq, review.encoder.dim) == (16, 2, 8)
    model.fit(ds.train)
    before = len(ds.test) - model.evaluate(ds.test)["n"]  # test rows that already have neither title nor review
    empty = ds.test.copy()
    blank = empty.index[empty[["Title", "Review Text"]].notna().any(axis=1)][:5]
    empty.loc[blank, ["Title", "Review Text"]] = np.nan  # five more rows the text model cannot score
    assert model.evaluate(empty)["n"] == len(empty) - before - 5
    prior = {1: 0.9, 0: 0.1}
    result = score_every_row(model, empty, prior)
    assert result["unscored"] == before + 5 and result["n"] == len(empty)
    alone = score_every_row(model, empty.loc[blank], prior)  # only unusable rows: the prior decides, class 1 everywhere
    assert alone["accuracy"] == float(np.mean(empty.loc[blank, ds.target] == 1))
    with pytest.raises(KeyError, match="no method titled 'nope'"):
        method_by_label(cfg, "nope")
