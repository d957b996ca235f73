"""Integrated gradients per modality kind: the known informative columns rank first, completeness, shapes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("captum", reason="captum is not installed (pip install -e '.[explain]')")

from modalfuse.api import MultimodalModel  # noqa: E402
from modalfuse.errors import ConfigError  # noqa: E402
from modalfuse.evaluate.feature_attribution import integrated_gradients, save_overlay  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_only_the_two_informative_columns_rank_first() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6))
    frame = pd.DataFrame(x, columns=[f"c{i}" for i in range(6)])
    frame["y"] = ((x[:, 1] - x[:, 4]) > 0).astype(int)
    mods = [{"name": "tab", "kind": "tabular", "options": {"numeric": [f"c{i}" for i in range(6)]}, "encoder": {"dim": 16, "options": {"hidden": 32, "dropout": 0.0}}}]
    model = MultimodalModel(mods, "y", {"fusion": {"name": "concat", "dim": 16}}, {"max_epochs": 15, "batch_size": 64, "progress": False, "seed": 0, "val_fraction": 0.0, "patience": 0})
    model.fit(frame)
    fa = integrated_gradients(model, frame, "tab", limit=200)
    ranking = [name for name, _ in fa.ranking()]
    assert set(ranking[:2]) == {"c1", "c4"}, fa.ranking()
    assert np.abs(fa.delta).max() < 1e-3
    assert fa.scores.shape == (200, 6) and fa.feature_names == [f"c{i}" for i in range(6)]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    from conftest import FAST_TRAIN, build_table, modality_specs

    folder = tmp_path_factory.mktemp("ig")
    csv, frame = build_table(folder, n=16, seed=1)
    model = MultimodalModel(modality_specs("image", "audio", "text", "tabular"), "label", {"fusion": {"name": "concat", "dim": 8}}, FAST_TRAIN)
    model.fit(csv)
    table = frame.assign(image=[str(folder / p) for p in frame["image"]], audio=[str(folder / p) for p in frame["audio"]])
    table.loc[0, "image"] = ""  # no image in row 0: it is not explained for the image
    return model, table


@pytest.mark.parametrize("modality, shape", [("image", (12, 12)), ("audio", (16, None)), ("text", (8,)), ("tabular", (3,))])
def test_each_kind_is_complete_with_its_baseline(fitted, modality, shape) -> None:
    model, table = fitted
    fa = integrated_gradients(model, table, modality, n_steps=64, batch_size=5, internal_batch_size=40)
    n = len(table) - (modality == "image")
    assert len(fa.rows) == n and fa.scores.shape[0] == n and (modality != "image" or 0 not in fa.rows)
    assert all(s is None or s == got for s, got in zip(shape, fa.scores.shape[1:]))
    assert np.isfinite(fa.scores).all() and np.abs(fa.scores).sum() > 0
    assert np.abs(fa.delta).max() < 0.02  # Σ scores ≈ f(x) − f(baseline)
    proba = model.predict_frame(table).filter(like="proba_").to_numpy()
    keep = [i for i, r in enumerate(table.index) if r in fa.rows]
    assert list(fa.target) == list(proba[keep].argmax(axis=1))
    if modality == "text":
        assert fa.tokens.shape == fa.scores.shape
        pad = model.preprocessors["text"].encoder_info()["pad_id"]
        assert np.all(fa.scores[fa.tokens == pad] == 0)  # pads equal the baseline: nothing to attribute


def test_overlay_png_and_errors(fitted, tmp_path) -> None:
    model, table = fitted
    fa = integrated_gradients(model, table.iloc[1:3], "image", baseline="mean")
    image = model.featurize(table.iloc[1:2]).inputs["image"][0].numpy()
    path = save_overlay(image, fa.scores[0], tmp_path / "overlay.png", "row 1")
    from PIL import Image

    with Image.open(path) as img:
        assert img.size[0] > 200 and len(set(np.asarray(img.convert("L")).ravel().tolist())) > 10
    from modalfuse.cli import main

    model.save(tmp_path / "model")
    table.to_csv(tmp_path / "t.csv", index=False)
    assert main(["explain", str(tmp_path / "model"), str(tmp_path / "t.csv"), "-o", str(tmp_path / "out" / "a.csv"), "--ig", "image", "--ig", "tabular"]) == 0
    saved = np.load(tmp_path / "out" / "ig_image.npz")
    assert saved["scores"].shape == (len(table) - 1, 12, 12) and "0" not in set(saved["rows"])
    assert len(list((tmp_path / "out").glob("ig_image_row*.png"))) == 8
    ranking = pd.read_csv(tmp_path / "out" / "ig_tabular_ranking.csv")
    assert set(ranking["feature"]) == {"x1", "x2", "color"} and ranking["mean_abs_ig"].is_monotonic_decreasing
    with pytest.raises(ConfigError, match="unknown modality"):
        integrated_gradients(model, table, "video")
    with pytest.raises(ConfigError, match="'blur' or 'mean'"):
        integrated_gradients(model, table, "image", baseline="noise")


def test_graph_atoms_and_sequence_residues(tmp_path) -> None:
    pytest.importorskip("rdkit")
    pytest.importorskip("torch_geometric")
    drugs = ["CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O", "C1CCNCC1"]
    proteins = ["MKTAYIAKQR", "MSTNPKPQRK", "MADEEKLPPG"]
    rng = np.random.default_rng(0)
    frame = pd.DataFrame([(d, p, float(rng.normal(6, 1))) for d in drugs for p in proteins for _ in range(2)], columns=["smiles", "sequence", "affinity"])
    mods = [
        {"name": "drug", "kind": "graph", "columns": ["smiles"], "encoder": {"dim": 8, "options": {"hidden": 8, "layers": 2}}},
        {"name": "protein", "kind": "sequence", "columns": ["sequence"], "options": {"max_len": 12},
         "encoder": {"dim": 8, "options": {"embed_dim": 8, "filters": [8], "kernel_size": 3, "dropout": 0.0}}},
    ]
    model = MultimodalModel(mods, "affinity", {"fusion": {"name": "concat", "dim": 8}}, {"max_epochs": 3, "batch_size": 8, "progress": False, "seed": 0}, task="regression")
    model.fit(frame)
    atoms = integrated_gradients(model, frame, "drug", n_steps=64)
    assert len(atoms.scores) == len(frame)
    from rdkit import Chem

    assert [len(s) for s in atoms.scores] == [Chem.MolFromSmiles(s).GetNumAtoms() for s in frame["smiles"]]
    assert np.abs(atoms.delta).max() < 0.02
    residues = integrated_gradients(model, frame, "protein", n_steps=64)
    assert residues.scores.shape == (len(frame), 12) and residues.tokens.shape == (len(frame), 12)
    assert np.abs(residues.delta).max() < 0.02
