"""The ``modalfuse`` command, called in-process: train → evaluate → predict, listings, and clean errors."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from modalfuse.cli import main
from modalfuse.config import load_config
from modalfuse.fusion import FUSIONS


def write_config(folder: Path, table: str = "table.csv", **overrides) -> Path:
    from conftest import modality_specs

    cfg = {
        "data": {"train": table, "test": table, "target": "label"},
        "modalities": modality_specs("image", "tabular"),
        "model": {"fusion": {"name": "concat", "dim": 16}, "head_hidden": 8},
        "train": {"max_epochs": 2, "batch_size": 8, "patience": 0, "progress": False, "val_fraction": 0.25, "seed": 0},
    }
    for section, value in overrides.items():
        cfg[section] = value
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, pd.DataFrame, str]:
    """Run ``modalfuse train`` once: (run folder, table, frame, stdout)."""
    from conftest import build_table

    root = tmp_path_factory.mktemp("cli")
    csv, frame = build_table(root / "data", n=16, seed=2)
    config = write_config(root / "data")
    out, err = io.StringIO(), io.StringIO()
    from contextlib import redirect_stderr, redirect_stdout

    with redirect_stdout(out), redirect_stderr(err):
        rc = main(["train", str(config), "--run-dir", str(root / "runs")])
    assert rc == 0, err.getvalue()
    runs = list((root / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.endswith("-config")
    return runs[0], csv, frame, out.getvalue()


def test_train_writes_run_folder(trained) -> None:
    run, csv, frame, stdout = trained
    names = {p.name for p in run.iterdir()}
    assert {"config.yaml", "model", "metrics.csv", "summary.json", "train_report.json", "val_report.json", "test_report.json"} <= names
    assert f"run folder: {run}" in stdout
    assert "test: accuracy=" in stdout
    summary = json.loads((run / "summary.json").read_text())
    assert summary["training"]["epochs"] == 2
    assert set(summary["test"]) >= {"accuracy", "f1", "log_loss", "n"} and summary["test"]["n"] == len(frame)
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics["epoch"]) == [0, 1] and {"train_loss", "val_loss", "val_accuracy", "lr"} <= set(metrics.columns)
    train_report = json.loads((run / "train_report.json").read_text())
    val_report = json.loads((run / "val_report.json").read_text())
    assert train_report["rows_read"] + val_report["rows_read"] == len(frame)
    # the resolved config in the run folder is itself a valid config that names the table absolutely
    cfg = load_config(run / "config.yaml")
    assert Path(cfg.data.train) == csv and [m.name for m in cfg.modalities] == ["image", "tabular"]
    assert cfg.modalities[0].encoder.name == "image_cnn"


def test_evaluate_saved_model(trained, capsys) -> None:
    run, csv, frame, _ = trained
    assert main(["evaluate", str(run / "model"), str(csv)]) == 0
    out = capsys.readouterr().out
    first, rest = out.split("\n", 1)
    assert f"{len(frame)} rows read, {len(frame)} used, 0 skipped" in first
    metrics = json.loads(rest)
    assert set(metrics) == {"accuracy", "f1", "log_loss", "ece", "brier", "n"} and metrics["n"] == len(frame)
    assert 0.0 <= metrics["accuracy"] <= 1.0
    summary = json.loads((run / "summary.json").read_text())
    assert metrics["accuracy"] == pytest.approx(summary["test"]["accuracy"])


def test_predict_writes_one_row_per_input(trained, tmp_path, capsys) -> None:
    run, csv, frame, _ = trained
    out_csv = tmp_path / "preds" / "p.csv"
    assert main(["predict", str(run / "model"), str(csv), "--output", str(out_csv)]) == 0
    assert f"wrote {len(frame)} predictions" in capsys.readouterr().out
    preds = pd.read_csv(out_csv)
    assert len(preds) == len(frame)
    assert list(preds.columns) == ["row", "prediction", "proba_cat", "proba_dog", "present_image", "present_tabular"]
    assert list(preds["row"]) == list(range(len(frame)))
    assert set(preds["prediction"]) <= {"cat", "dog"}
    assert np.allclose(preds["proba_cat"] + preds["proba_dog"], 1, atol=1e-5)
    expected = np.where(preds["proba_dog"] > 0.5, "dog", "cat")
    assert list(preds["prediction"]) == list(expected)
    assert preds["present_image"].all() and preds["present_tabular"].all()


def test_predict_skips_bad_rows_when_asked(trained, tmp_path, capsys) -> None:
    run, csv, frame, _ = trained
    folder = tmp_path / "bad"
    folder.mkdir()
    table = frame.copy()
    table["image"] = [str(csv.parent / p) for p in table["image"]]
    broken = folder / "broken.png"
    broken.write_bytes(b"not a png at all" * 10)
    table.loc[4, "image"] = str(broken)
    table.loc[6, "image"] = str(folder / "absent.png")
    bad_csv = folder / "bad.csv"
    table.to_csv(bad_csv, index=False)
    out_csv = folder / "p.csv"

    assert main(["predict", str(run / "model"), str(bad_csv), "-o", str(out_csv)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "row 4" in err and str(broken) in err and "Traceback" not in err

    assert main(["predict", str(run / "model"), str(bad_csv), "-o", str(out_csv), "--on-error", "skip"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {len(frame) - 1} predictions" in out
    preds = pd.read_csv(out_csv)
    assert 4 not in set(preds["row"]) and len(preds) == len(frame) - 1
    assert not preds.loc[preds["row"] == 6, "present_image"].item(), "an absent file is a missing modality"
    skipped = pd.read_csv(folder / "p_skipped.csv")
    assert list(skipped["row"]) == [4] and skipped["file"].item() == str(broken)


def test_fusions_and_encoders_listings(capsys) -> None:
    assert main(["fusions"]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = {line.split()[0]: line.split(None, 1)[1] for line in lines}
    assert {"concat", "sum", "late"} <= set(listed)
    for name, description in FUSIONS.describe().items():
        assert listed[name] == description and description
    assert "concatenate" in listed["concat"].lower()
    assert main(["encoders"]) == 0
    encoders = {line.split()[0] for line in capsys.readouterr().out.splitlines()}
    assert {"image_cnn", "audio_cnn", "text_cnn", "text_transformer", "tabular_mlp", "sequence_cnn", "vector_mlp", "pretrained_text"} <= encoders


def test_datasets_list(capsys) -> None:
    assert main(["datasets", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines]
    assert {"handwritten", "spoken_digits", "womens_clothing", "demo"} <= set(names)
    assert all(len(line.split(None, 1)) == 2 for line in lines), "each dataset has a description"


@pytest.mark.parametrize(
    "content,message",
    [
        ("data: {train: table.csv, target: label}\ntrian: {max_epochs: 2}\n", "did you mean 'train'?"),
        ("data: {train: table.csv, target: label}\ntrain: {max_epochs: lots}\n", "train.max_epochs"),
        ("data: {train: missing.csv, target: label}\nmodalities: [{name: t, kind: tabular, columns: [x1]}]\n", "table not found"),
        ("data: {train: table.csv, target: label}\nmodalities: [{name: t, kind: tabular, columns: [nope]}]\n", "needs columns ['nope']"),
        ("data: {train: table.csv, target: labell}\nmodalities: [{name: t, kind: tabular, columns: [x1]}]\n", "'labell' is not in the training table"),
        ("data: [oops\n", "not valid YAML"),
    ],
    ids=["unknown-key", "wrong-type", "missing-table", "missing-column", "missing-target", "bad-yaml"],
)
def test_bad_config_exits_2_without_traceback(content, message, tiny_table, tmp_path, capsys) -> None:
    csv, _ = tiny_table
    config = csv.parent / "bad.yaml"
    config.write_text(content)
    rc = main(["train", str(config), "--run-dir", str(tmp_path / "runs")])
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.err.startswith("error: ")
    assert message in captured.err
    assert "Traceback" not in captured.err + captured.out


def test_evaluate_missing_model_exits_2(tmp_path, capsys) -> None:
    assert main(["evaluate", str(tmp_path / "nothing"), str(tmp_path / "t.csv")]) == 2
    assert "holds no saved model" in capsys.readouterr().err


def test_entry_point_help() -> None:
    exe = Path(sys.executable).parent / "modalfuse"
    if not exe.exists():
        pytest.skip(f"console script not installed at {exe}")
    result = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for command in ("train", "evaluate", "predict", "demo", "datasets", "fusions", "encoders"):
        assert command in result.stdout


def test_package_import_and_help_leave_torch_unloaded():
    code = ("import sys, modalfuse\n"
            "from modalfuse.cli import build_parser\n"
            "build_parser().format_help()\n"
            "assert not {'torch', 'lightning'} & set(sys.modules), sorted({'torch', 'lightning'} & set(sys.modules))\n"
            "assert modalfuse.MultimodalModel.__name__ == 'MultimodalModel' and 'torch' in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
