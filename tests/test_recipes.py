"""A weighted ensemble of recipes (``recipes:``, issue 17): what preset: auto's ensemble selection writes."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import distributed_job  # noqa: E402

from modalfuse.api import MultimodalModel  # noqa: E402
from modalfuse.auto import greedy_selection  # noqa: E402
from modalfuse.cli import main  # noqa: E402
from modalfuse.errors import ConfigError  # noqa: E402
from modalfuse.outputs import average_outputs  # noqa: E402

TRAIN = {"max_epochs": 3, "batch_size": 32, "patience": 0, "val_fraction": 0.0, "progress": False, "threads": 1}
MODS = [{"name": m, "kind": "vector", "columns": c, "encoder": {"dim": 8}} for m, c in distributed_job.COLUMNS.items()]
FIRST = next(iter(distributed_job.COLUMNS))


def _recipes(head: str = "default") -> list[dict]:
    return [{"label": "concat", "weight": 3, "model": {"fusion": {"name": "concat", "dim": 16}, "head": head}},
            {"label": "late, wider", "weight": 1, "model": {"fusion": {"name": "late"}},
             "encoders": {FIRST: {"dim": 12}}, "train": {"lr": 0.01}}]


def test_members_average_by_their_weights_and_survive_save_and_load(tmp_path, one_torch_thread):
    train, test = distributed_job.table(120, 0), distributed_job.table(30, 1)
    model = MultimodalModel(MODS, "label", None, TRAIN, task="classification", recipes=_recipes()).fit(train)
    assert len(model.members) == 2 and model.member_weights == [0.75, 0.25]
    assert model.members[1].encoders[FIRST].dim == 12 and model.members[0].encoders[FIRST].dim == 8
    features = model.featurize(test)
    with torch.no_grad():
        alone = [torch.softmax(average_outputs([net], features, 64, 0, "classification", 1.0)["output"], dim=1) for net in model.members]
    expected = 0.75 * alone[0] + 0.25 * alone[1]
    np.testing.assert_allclose(model.predict_proba(test), expected.numpy(), atol=1e-6)
    assert not np.allclose(alone[0].numpy(), alone[1].numpy(), atol=1e-3)  # two different networks, not one twice
    model.save(tmp_path / "m")
    back = MultimodalModel.load(tmp_path / "m")
    assert [r.label for r in back.recipes] == ["concat", "late, wider"] and back.member_weights == [0.75, 0.25]
    np.testing.assert_allclose(back.predict_proba(test), model.predict_proba(test), atol=1e-6)
    frame = back.predict_frame(test, mc_samples=2)  # MC dropout: each member's passes weigh its share
    assert (frame["uncertainty_epistemic"] >= 0).all() and np.isfinite(frame["uncertainty_epistemic"]).all()


def test_recipes_that_do_not_combine_are_refused_before_training(one_torch_thread):
    with pytest.raises(ConfigError, match=r"recipes\[0\]\.encoders: \['nope'\] name no modality"):
        MultimodalModel(MODS, "label", None, TRAIN, recipes=[{"weight": 1, "encoders": {"nope": {"dim": 4}}}])
    with pytest.raises(ConfigError, match=r"recipes\[1\] \(late, wider\)\.train"):
        MultimodalModel(MODS, "label", None, TRAIN, recipes=[_recipes()[0], {**_recipes()[1], "train": {"lr": -1}}])
    model = MultimodalModel(MODS, "label", None, TRAIN, task="classification", recipes=_recipes(head="evidential"))
    with pytest.raises(ConfigError, match="MulticlassHead .* cannot be averaged with the first recipe's EvidentialHead"):
        model.fit(distributed_job.table(60, 0))
    assert not model.members


def test_greedy_selection_mixes_predictions_that_are_right_on_different_rows():
    y = np.array([0] * 6 + [1] * 6)
    left = np.where((np.arange(12) < 6)[:, None], [[0.9, 0.1]], [[0.6, 0.4]])  # right on the first half, barely wrong after
    right = np.where((np.arange(12) >= 6)[:, None], [[0.1, 0.9]], [[0.4, 0.6]])
    worse = np.full((12, 2), 0.5)
    counts, (accuracy, log_lik) = greedy_selection([left, worse, right], y, True, rounds=10)
    assert counts[0] > 0 and counts[2] > 0 and counts[1] == 0
    assert accuracy == 1.0 and log_lik > np.log(0.6)
    single, _ = greedy_selection([left, worse], y, True, rounds=10)  # nothing to gain: the best one alone
    assert single == [1, 0]


def test_cli_trains_a_config_with_recipes_and_refuses_them_beside_auto(tmp_path, capsys, one_torch_thread):
    distributed_job.table(120, 0).to_csv(tmp_path / "train.csv", index=False)
    cfg = {"data": {"train": "train.csv", "target": "label", "task": "classification", "cache_dir": "none"},
           "modalities": MODS, "recipes": _recipes(), "train": TRAIN}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", str(tmp_path / "cfg.yaml"), "--run-dir", str(tmp_path / "runs")]) == 0
    assert "auto:" not in capsys.readouterr().out  # recipes are a chosen model: no search by default
    run = next((tmp_path / "runs").iterdir())
    model = MultimodalModel.load(run / "model")
    assert model.member_weights == [0.75, 0.25] and {p.parent.name for p in run.glob("member*/*")} == {"member0", "member1"}
    (tmp_path / "auto.yaml").write_text(yaml.safe_dump({**cfg, "preset": "auto"}))
    assert main(["train", str(tmp_path / "auto.yaml"), "--run-dir", str(tmp_path / "runs2")]) == 2
    assert "recipes: a weighted ensemble is a chosen recipe" in capsys.readouterr().err


def test_bundle_and_server_give_the_weighted_mixture(tmp_path, one_torch_thread):
    from fastapi.testclient import TestClient

    from modalfuse.serve import export_bundle, load_bundle
    from modalfuse.serve.app import create_app
    from modalfuse.serve.onnx import OnnxExportError, export_onnx

    train, test = distributed_job.table(120, 0), distributed_job.table(5, 1)
    model = MultimodalModel(MODS, "label", None, TRAIN, task="classification", recipes=_recipes()).fit(train)
    export_bundle(model, tmp_path / "b")
    card = (tmp_path / "b" / "card.json").read_text()
    assert '"label": "late, wider"' in card and '"weight": 3' in card
    served = load_bundle(tmp_path / "b")
    expected = model.predict_frame(test)
    assert served.model.member_weights == [0.75, 0.25]
    np.testing.assert_allclose(served.model.predict_proba(test), model.predict_proba(test), atol=1e-6)
    records = [{m: [float(test[c].iloc[i]) for c in cols] for m, cols in distributed_job.COLUMNS.items()} for i in range(len(test))]
    with TestClient(create_app(tmp_path / "b")) as client:
        r = client.post("/predict", json={"records": records})
    assert r.status_code == 200, r.text
    for i, res in enumerate(r.json()["results"]):
        assert res["prediction"] == expected["prediction"].iloc[i]
        for cls, p in res["probabilities"].items():
            assert np.isclose(p, expected[f"proba_{cls}"].iloc[i], atol=1e-6)
    with pytest.raises(OnnxExportError, match="ensemble of 2 members"):
        export_onnx(model, tmp_path / "m.onnx")
