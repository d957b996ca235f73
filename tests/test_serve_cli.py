"""`modalfuse export` (folder and .tar.gz, model card with per-subset metrics) and `predict --chunk-size`."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from modalfuse import MultimodalModel
from modalfuse.cli import main
from modalfuse.serve import load_bundle

TRAIN = {"max_epochs": 2, "batch_size": 8, "lr": 3e-3, "patience": 0, "seed": 0, "progress": False, "val_fraction": 0.0, "threads": 1}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    from conftest import build_table, modality_specs

    folder = tmp_path_factory.mktemp("cli")
    csv, frame = build_table(folder / "data", n=23, seed=4)
    model = MultimodalModel(modality_specs("image", "tabular"), "label", train=TRAIN).fit(csv)
    return csv, frame, model, model.save(folder / "run" / "model")


def test_export_folder_and_archive(saved, tmp_path, capsys):
    csv, frame, model, model_dir = saved
    assert main(["export", str(model_dir), str(tmp_path / "bundle"), "--eval", str(csv), "--data-file", str(csv)]) == 0
    card = json.loads((tmp_path / "bundle" / "card.json").read_text())
    subsets = {tuple(r["modalities"]) for r in card["evaluation"]["by_modalities"]}
    assert subsets == {("image", "tabular"), ("image",), ("tabular",)}
    assert card["data"]["sha256"][str(csv)] and card["training"]["config"]["max_epochs"] == 2
    assert main(["export", str(model_dir), str(tmp_path / "b.tar.gz")]) == 0
    assert load_bundle(tmp_path / "b.tar.gz").card["task"] == "classification"
    assert main(["export", str(model_dir), str(tmp_path / "bundle")]) == 2  # refuses to overwrite
    assert "not empty" in capsys.readouterr().err


def test_predict_chunked_equals_whole(saved, tmp_path):
    csv, frame, model, model_dir = saved
    whole, chunked = tmp_path / "whole.csv", tmp_path / "chunked.csv"
    assert main(["predict", str(model_dir), str(csv), "-o", str(whole)]) == 0
    assert main(["predict", str(model_dir), str(csv), "-o", str(chunked), "--chunk-size", "5"]) == 0
    a, b = pd.read_csv(whole), pd.read_csv(chunked)
    assert len(b) == len(frame) and list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a, b, atol=1e-6)
    pq = tmp_path / "chunked.parquet"
    assert main(["predict", str(model_dir), str(csv), "-o", str(pq), "--chunk-size", "7"]) == 0
    pd.testing.assert_frame_equal(a, pd.read_parquet(pq), atol=1e-6, check_dtype=False)
