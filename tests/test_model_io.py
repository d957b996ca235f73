"""Fit, save, load: identical predictions after a round trip, no pickles, seeded fits are reproducible."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from modalfuse import ConfigError, MultimodalModel

TRAIN = {"max_epochs": 2, "batch_size": 8, "lr": 3e-3, "patience": 0, "seed": 0, "progress": False, "val_fraction": 0.25}
PICKLE_SUFFIXES = {".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".bin", ".joblib", ".npy", ".npz"}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    from conftest import build_table

    return build_table(tmp_path_factory.mktemp("io"), n=16, seed=5)


@pytest.fixture(scope="module")
def fitted(data) -> MultimodalModel:
    from conftest import modality_specs

    csv, _ = data
    return MultimodalModel(modality_specs("image", "tabular"), "label", train=TRAIN).fit(csv)


def test_save_load_round_trip(fitted, data, tmp_path) -> None:
    csv, frame = data
    folder = fitted.save(tmp_path / "model")
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["manifest.json", "meta.json", "model.json", "preprocessors.json", "train.json", "weights.safetensors"]
    for p in folder.iterdir():
        assert p.suffix not in PICKLE_SUFFIXES
        assert not p.read_bytes()[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"), f"{p.name} looks like a pickle"
        if p.suffix == ".json":
            json.loads(p.read_text())
    weights = load_file(str(folder / "weights.safetensors"))
    state = fitted.net.state_dict()
    assert set(weights) == set(state)
    assert all(torch.equal(weights[k], state[k]) for k in state)
    spec = json.loads((folder / "model.json").read_text())
    assert spec["task"] == "classification" and spec["target"] == "label" and spec["classes"] == ["cat", "dog"]

    loaded = MultimodalModel.load(folder)
    assert not loaded.net.training
    original = fitted.predict_proba(csv)
    again = loaded.predict_proba(csv)
    assert original.shape == (len(frame), 2)
    assert np.array_equal(original, again)
    assert np.allclose(original.sum(1), 1, atol=1e-6)
    assert list(loaded.predict(csv)) == list(fitted.predict(csv))
    assert set(loaded.predict(csv)) <= {"cat", "dog"}
    assert loaded.evaluate(csv) == fitted.evaluate(csv)
    for name, pre in fitted.preprocessors.items():
        assert loaded.preprocessors[name].state_dict() == pre.state_dict()


def test_loaded_model_handles_missing_modality(fitted, data, tmp_path) -> None:
    csv, frame = data
    loaded = MultimodalModel.load(fitted.save(tmp_path / "model"))
    test = frame.copy()
    test["image"] = [str(csv.parent / p) for p in test["image"]]
    test.loc[[0, 3], "image"] = None
    out = loaded.predict_frame(test)
    assert list(out["row"]) == list(range(len(frame)))
    assert list(out.columns[:4]) == ["row", "prediction", "proba_cat", "proba_dog"]
    assert list(out["present_image"]) == [i not in (0, 3) for i in range(len(frame))]
    assert np.isfinite(out[["proba_cat", "proba_dog"]].to_numpy()).all()
    # rows with the image present are unaffected by other rows missing theirs
    full = loaded.predict_frame(csv)
    keep = [i for i in range(len(frame)) if i not in (0, 3)]
    assert np.allclose(out.loc[keep, "proba_dog"], full.loc[keep, "proba_dog"], atol=1e-6)


def test_load_refuses_a_folder_without_model(tmp_path) -> None:
    with pytest.raises(ConfigError, match="holds no saved model"):
        MultimodalModel.load(tmp_path)
    with pytest.raises(RuntimeError, match="not fitted"):
        MultimodalModel([{"name": "t", "kind": "tabular", "columns": ["a"]}], "y").predict(pd.DataFrame({"a": [1.0]}))


def _weights(model: MultimodalModel) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.net.state_dict().items()}


def test_seeded_fits_are_identical(data) -> None:
    from conftest import modality_specs

    csv, _ = data
    specs = modality_specs("image", "tabular")
    a = MultimodalModel(specs, "label", train=TRAIN).fit(csv)
    b = MultimodalModel(specs, "label", train=TRAIN).fit(csv)
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert np.array_equal(a.predict_proba(csv), b.predict_proba(csv))
    assert a.history["best_val_loss"] == b.history["best_val_loss"]

    c = MultimodalModel(specs, "label", train={**TRAIN, "seed": 1}).fit(csv)
    wc = _weights(c)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa), "another seed must give another model"


def test_regression_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=30), "b": rng.normal(size=30)})
    frame["y"] = 2.5 * frame["a"] - frame["b"] + 0.1 * rng.normal(size=30)
    mods = [{"name": "t", "kind": "tabular", "columns": ["a", "b"], "encoder": {"dim": 8, "options": {"hidden": 16}}}]
    model = MultimodalModel(mods, "y", train=TRAIN).fit(frame)
    assert model.task == "regression"
    with pytest.raises(ValueError, match="classification"):
        model.predict_proba(frame)
    loaded = MultimodalModel.load(model.save(tmp_path / "reg"))
    assert loaded.task == "regression"
    pred = model.predict(frame)
    assert pred.dtype.kind == "f" and pred.shape == (30,)
    assert np.array_equal(pred, loaded.predict(frame))
    metrics = loaded.evaluate(frame)
    assert set(metrics) == {"mse", "mae", "r2", "ci", "pearson", "spearman", "rm2", "n"} and metrics["n"] == 30


def test_small_classification_table_fits_with_default_split() -> None:
    """A tiny table (8 rows, 2 classes) with the default val_fraction (0.1) still trains."""
    frame = pd.DataFrame({"a": [0.1, 0.9, 0.2, 1.1, 0.0, 1.0, 0.3, 0.8], "y": ["n", "p"] * 4})
    mods = [{"name": "t", "kind": "tabular", "columns": ["a"], "encoder": {"dim": 4, "options": {"hidden": 8}}}]
    model = MultimodalModel(mods, "y", train={"max_epochs": 1, "progress": False})
    model.fit(frame)
    assert model.reports["train"].rows_read + model.reports["val"].rows_read == 8
    assert len(model.predict(frame)) == 8


def test_temperature_scaling_is_fitted_saved_and_keeps_predictions(tmp_path) -> None:
    import numpy as np

    from modalfuse import MultimodalModel

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)).astype("float32")
    y = (x[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(int) + (x[:, 1] > 1).astype(int)
    data = {"v": x, "w": x[:, ::-1].copy(), "y": y}
    mods = [{"name": "v", "kind": "vector"}, {"name": "w", "kind": "vector"}]
    model = MultimodalModel(mods, "y", train={"max_epochs": 40, "val_fraction": 0, "progress": False, "lr": 0.01})
    model.fit({k: v[:200] for k, v in data.items()})
    held = {k: v[200:] for k, v in data.items()}
    before = model.predict_proba(held)
    t = model.calibrate(held)
    assert t > 0 and t != 1.0
    after = model.predict_proba(held)
    assert np.array_equal(before.argmax(1), after.argmax(1))
    assert model.evaluate(held)["log_loss"] <= -np.log(before[np.arange(100), y[200:]]).mean() + 1e-6
    model.save(tmp_path / "m")
    loaded = MultimodalModel.load(tmp_path / "m")
    assert loaded.temperature == t
    np.testing.assert_allclose(loaded.predict_proba(held), after, rtol=1e-5)


def test_deep_ensemble_averages_members_and_reports_epistemic_variance(tmp_path) -> None:
    import numpy as np
    import torch

    from modalfuse import MultimodalModel

    rng = np.random.default_rng(1)
    x = rng.normal(size=(160, 5)).astype("float32")
    data = {"v": x, "w": (x + rng.normal(size=x.shape)).astype("float32"), "y": (x[:, 0] > 0).astype(int) + (x[:, 1] > 0).astype(int)}
    mods = [{"name": "v", "kind": "vector"}, {"name": "w", "kind": "vector"}]
    model = MultimodalModel(mods, "y", train={"max_epochs": 3, "val_fraction": 0, "progress": False, "ensemble": 3})
    model.fit(data)
    assert len(model.members) == 3
    p0, p1 = (list(m.parameters())[0] for m in model.members[:2])
    assert not torch.equal(p0, p1)  # members start from different seeds
    frame = model.predict_frame(data)
    assert (frame["uncertainty_epistemic"] > 0).all()
    # the ensemble's probability is the mean of its members' probabilities
    feats = model.featurize(data)
    with torch.no_grad():
        probs = torch.stack([m.eval().head.proba(m(feats[list(range(len(feats)))]).output) for m in model.members]).mean(0)
    np.testing.assert_allclose(model.predict_proba(data), probs.numpy(), rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "ens")
    np.testing.assert_allclose(MultimodalModel.load(tmp_path / "ens").predict_proba(data), model.predict_proba(data), rtol=1e-6)


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage,pattern",
    [
        (lambda f: _flip_last_byte(f / "weights.safetensors"), r"file weights\.safetensors was modified"),
        (lambda f: (f / "model.json").write_text((f / "model.json").read_text().replace('"cat",\n    "dog"', '"dog",\n    "cat"')),
         r"file model\.json was modified"),
        (lambda f: (f / "preprocessors.json").unlink(), r"file preprocessors\.json is missing"),
        (lambda f: (f / "manifest.json").write_text("{not json"), r"manifest\.json: unreadable manifest"),
    ],
    ids=["flipped-weight-byte", "reordered-classes", "deleted-file", "broken-manifest"],
)
def test_load_refuses_an_altered_model_folder(fitted, tmp_path, damage, pattern) -> None:
    """The manifest written by save() is checked by load(): nothing altered is ever used, and the error is one line."""
    folder = fitted.save(tmp_path / "model")
    damage(folder)
    with pytest.raises(ConfigError, match=pattern) as info:
        MultimodalModel.load(folder)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "damage,pattern",
    [
        (lambda f: (f / "weights.safetensors").write_bytes((f / "weights.safetensors").read_bytes()[:100]), r"weights\.safetensors: unreadable weights"),
        (lambda f: (f / "train.json").write_text('{"max_epochs": -3}'), r"train\.json: max_epochs: Input should be greater than 0"),
        (lambda f: (f / "preprocessors.json").write_text("{}"), r"preprocessors\.json: no state for modality 'image'"),
    ],
    ids=["truncated-weights", "invalid-train-json", "missing-preprocessor-state"],
)
def test_unmanifested_folder_problems_are_one_line(fitted, tmp_path, damage, pattern) -> None:
    """A folder without a manifest (saved by an older version) still gets a clear error for each broken file."""
    folder = fitted.save(tmp_path / "model")
    (folder / "manifest.json").unlink()
    damage(folder)
    with pytest.raises(ConfigError, match=pattern) as info:
        MultimodalModel.load(folder)
    assert "\n" not in str(info.value)


def test_fit_twice_refits_task_and_preprocessors(data) -> None:
    """Fitted state (task_, preprocessors, classes) is apart from the constructor's parameters, so a refit starts afresh."""
    from conftest import modality_specs

    _, frame = data
    model = MultimodalModel(modality_specs("tabular"), "label", train=TRAIN)
    assert model.requested_task == "auto" and model.task_ is None
    model.fit(frame)
    assert model.task == model.task_ == "classification" and model.target_encoder.classes == ["cat", "dog"]
    first_mean = list(model.preprocessors["tabular"].mean)
    shifted = frame.assign(label=np.linspace(0.0, 1.0, len(frame)), x1=frame["x1"] + 100.0)
    model.fit(shifted)
    assert model.task == "regression" and model.requested_task == "auto"
    assert model.net.head.task == "regression"
    assert first_mean[0] < 10 and model.preprocessors["tabular"].mean[0] > 95  # statistics of the second table


def test_aux_weight_zero_switches_the_auxiliary_loss_off() -> None:
    """Late fusion trains its per-modality branches with weight 1.0 by default; aux_weight 0 means no such term."""
    from modalfuse.config import ModalityConfig, ModelConfig, TrainConfig
    from modalfuse.data.batch import Batch
    from modalfuse.model import MultimodalNet
    from modalfuse.train.module import MultimodalModule

    mods = [ModalityConfig(name=m, kind="vector") for m in ("a", "b")]
    net = MultimodalNet.build(mods, ModelConfig(fusion={"name": "late", "dim": 8}), {"a": {"input_dim": 3}, "b": {"input_dim": 3}}, "classification", 3)
    g = torch.Generator().manual_seed(0)
    batch = Batch({"a": torch.randn(6, 3, generator=g), "b": torch.randn(6, 3, generator=g)},
                  {"a": torch.ones(6, dtype=torch.bool), "b": torch.ones(6, dtype=torch.bool)}, torch.tensor([0, 1, 2, 0, 1, 2]), torch.arange(6))
    net.eval()
    head_only = net.head.loss(net(batch).output, batch.target)
    off = MultimodalModule(net, TrainConfig(), aux_weight=ModelConfig(aux_weight=0).aux_weight).eval()
    on = MultimodalModule(net, TrainConfig(), aux_weight=1.0).eval()
    assert torch.allclose(off.loss(batch)[0], head_only)
    assert on.loss(batch)[0] > head_only
