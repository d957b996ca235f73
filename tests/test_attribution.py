"""Modality attribution: Shapley algebra on games with known answers, and the real missing-modality path."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from modalfuse.api import MultimodalModel
from modalfuse.errors import ConfigError
from modalfuse.evaluate.attribution import exact_shapley, interaction_column, modality_attribution, sampled_shapley


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def game_values(v, m: int, n: int = 1) -> np.ndarray:
    """[2^m, n] coalition values from a function of the member tuple."""
    return np.array([[v(tuple(i for i in range(m) if b >> i & 1))] * n for b in range(1 << m)], dtype=np.float64)


def test_additive_game_gives_its_weights_and_no_interaction() -> None:
    w = [0.5, -1.25, 2.0]
    phi, inter = exact_shapley(game_values(lambda s: sum(w[i] for i in s), 3))
    assert np.allclose(phi[0], w)
    assert np.allclose(inter, 0)


def test_and_game_is_complementary_or_game_is_redundant() -> None:
    phi, inter = exact_shapley(game_values(lambda s: float(len(s) == 2), 2))  # needs both
    assert np.allclose(phi[0], [0.5, 0.5]) and inter[0, 0, 1] == pytest.approx(1.0)
    phi, inter = exact_shapley(game_values(lambda s: float(len(s) >= 1), 2))  # either suffices
    assert np.allclose(phi[0], [0.5, 0.5]) and inter[0, 0, 1] == pytest.approx(-1.0)


def test_dummy_player_gets_zero_and_symmetric_players_share() -> None:
    # player 2 never changes the value; players 0 and 1 are interchangeable (v = 3 when either of them is in)
    phi, _ = exact_shapley(game_values(lambda s: 3.0 * bool({0, 1} & set(s)) + 1.0 * (0 in s and 1 in s), 3))
    assert phi[0, 2] == pytest.approx(0.0) and phi[0, 0] == pytest.approx(phi[0, 1])
    assert phi[0].sum() == pytest.approx(4.0)


def test_exact_shapley_is_efficient_on_random_games() -> None:
    rng = np.random.default_rng(0)
    for m in (1, 2, 4, 6):
        values = rng.normal(size=(1 << m, 5))
        phi, _ = exact_shapley(values)
        assert np.allclose(phi.sum(axis=1), values[-1] - values[0], atol=1e-12)


def test_sampled_shapley_is_efficient_and_close_to_exact() -> None:
    rng = np.random.default_rng(1)
    m = 5
    values = rng.normal(size=(1 << m, 3))
    exact, _ = exact_shapley(values)
    est, se = sampled_shapley(lambda b: values[b], m, 3, n_permutations=400, seed=0)
    assert np.allclose(est.sum(axis=1), values[-1] - values[0], atol=1e-12)
    assert (se > 0).all()
    assert (np.abs(est - exact) <= 5 * se).all()
    additive = game_values(lambda s: sum(s), m, 2)
    est, se = sampled_shapley(lambda b: additive[b], m, 2, n_permutations=10, seed=0)
    assert np.allclose(est, np.arange(m)) and np.allclose(se, 0)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    from conftest import FAST_TRAIN, build_table, modality_specs

    folder = tmp_path_factory.mktemp("attr")
    csv, frame = build_table(folder, n=24, seed=3)
    model = MultimodalModel(modality_specs("image", "tabular", "text"), "label", {"fusion": {"name": "concat", "dim": 8}, "head_hidden": 8}, FAST_TRAIN)
    model.fit(csv)
    table = frame.assign(image=[str(folder / p) for p in frame["image"]], audio=[str(folder / p) for p in frame["audio"]])
    table.loc[2, "image"] = str(folder / "absent.png")  # one row without an image: a dummy player there
    return model, table


def test_attribution_goes_through_the_missing_modality_path(fitted) -> None:
    model, table = fitted
    att = model.explain(table)
    assert att.method == "exact" and att.modalities == ["image", "tabular", "text"]
    assert set(att.frame["quantity"]) == {"predicted_proba", "loss"}
    prob = att.frame[att.frame["quantity"] == "predicted_proba"].reset_index(drop=True)
    features = model.featurize(table)
    head = model.net.head
    pred = model.predict_frame(table)
    # v(N) is the predicted class's probability
    expected = pred[[f"proba_{c}" for c in model.target_encoder.classes]].max(axis=1).to_numpy()
    assert np.allclose(prob["value_all"], expected, atol=1e-6)
    assert list(prob["predicted"]) == list(pred["prediction"])
    # leave-one-out equals a direct evaluation with that modality marked missing
    classes = head.proba(model.outputs(features)["output"]).argmax(dim=1)
    for name in att.modalities:
        off = replace(features, masks={**features.masks, name: torch.zeros_like(features.masks[name])})
        p = head.proba(model.outputs(off)["output"])[torch.arange(len(classes)), classes].double().numpy()
        assert np.allclose(prob[f"loo_{name}"], prob["value_all"] - p, atol=1e-6)
    # efficiency, exactly: Σ φ = f(all) − f(none), for both quantities
    for _, part in att.frame.groupby("quantity"):
        total = part[[f"shapley_{m}" for m in att.modalities]].sum(axis=1)
        assert np.allclose(total, part["value_all"] - part["value_none"], rtol=0, atol=1e-9)
    # the row without an image: the image's Shapley value, leave-one-out and interactions are 0
    row = prob[prob["row"] == 2].iloc[0]
    assert not row["present_image"]
    assert row["shapley_image"] == 0 and row["loo_image"] == 0
    assert row[interaction_column("image", "tabular")] == 0
    # the loss is −log p(true class)
    loss = att.frame[att.frame["quantity"] == "loss"].reset_index(drop=True)
    p_true = pred[[f"proba_{c}" for c in model.target_encoder.classes]].to_numpy()[np.arange(len(pred)), features.target.numpy()]
    assert np.allclose(loss["value_all"], -np.log(p_true), atol=1e-5)
    summary = att.summary()
    assert set(summary["modality"]) == set(att.modalities)
    assert np.isclose(summary.groupby("quantity")["share_top"].sum(), 1.0).all()
    phi = loss[[f"shapley_{m}" for m in att.modalities]].to_numpy()
    expected_top = np.bincount(phi.argmin(axis=1), minlength=3) / len(phi)  # for the loss: who lowers it most
    assert np.allclose(summary[summary["quantity"] == "loss"]["share_top"], expected_top)
    assert len(att.interactions()) == 2 * 3


def test_sampled_mode_states_an_error_and_stays_efficient(fitted) -> None:
    model, table = fitted
    exact = model.explain(table, loss=False).frame
    sampled = modality_attribution(model, table, loss=False, exact_max=2, n_permutations=60, seed=0)
    assert sampled.method == "sampled" and sampled.n_permutations == 60
    f = sampled.frame
    names = sampled.modalities
    assert {f"shapley_se_{m}" for m in names} <= set(f.columns)
    assert not any(c.startswith("interaction_") for c in f.columns)
    assert np.allclose(f[[f"shapley_{m}" for m in names]].sum(axis=1), f["value_all"] - f["value_none"], atol=1e-9)
    for m in names:
        assert (np.abs(f[f"shapley_{m}"] - exact[f"shapley_{m}"]) <= 5 * f[f"shapley_se_{m}"] + 1e-9).all()


def test_unlabelled_data_explains_the_prediction_only(fitted) -> None:
    model, table = fitted
    att = model.explain(table.drop(columns="label"))
    assert set(att.frame["quantity"]) == {"predicted_proba"} and "target" not in att.frame
    with pytest.raises(ConfigError, match="needs labels"):
        model.explain(table.drop(columns="label"), loss=True)


def test_regression_explains_the_output(tmp_path) -> None:
    from conftest import FAST_TRAIN, build_table, modality_specs

    csv, frame = build_table(tmp_path, n=20, seed=4)
    frame["y"] = frame["x1"] * 2.0
    frame.to_csv(csv, index=False)
    model = MultimodalModel(modality_specs("image", "tabular"), "y", {"fusion": {"name": "late"}}, FAST_TRAIN, task="regression")
    model.fit(csv)
    att = model.explain(csv)
    assert set(att.frame["quantity"]) == {"prediction", "loss"}
    part = att.frame[att.frame["quantity"] == "prediction"]
    assert np.allclose(part["value_all"], model.predict(csv).astype(float), atol=1e-5)
    loss = att.frame[att.frame["quantity"] == "loss"]
    assert np.allclose(loss["value_all"], (part["value_all"].to_numpy() - frame["y"].to_numpy()) ** 2, atol=1e-4)
    assert np.allclose(loss[["shapley_image", "shapley_tabular"]].sum(axis=1), loss["value_all"] - loss["value_none"], atol=1e-9)


def test_explain_command_writes_parquet(fitted, tmp_path, capsys) -> None:
    from modalfuse.cli import main

    model, table = fitted
    model.save(tmp_path / "model")
    table.to_csv(tmp_path / "t.csv", index=False)
    assert main(["explain", str(tmp_path / "model"), str(tmp_path / "t.csv"), "-o", str(tmp_path / "out" / "a.parquet")]) == 0
    out = capsys.readouterr().out
    assert "exact Shapley values" in out and f"wrote {2 * len(table)} rows" in out
    frame = pd.read_parquet(tmp_path / "out" / "a.parquet")
    direct = model.explain(table).frame
    assert list(frame.columns) == list(direct.columns)
    assert np.allclose(frame["shapley_image"], direct["shapley_image"], atol=1e-6)
    assert main(["explain", str(tmp_path / "nowhere"), str(tmp_path / "t.csv"), "-o", str(tmp_path / "b.parquet")]) == 2
    assert "holds no saved model" in capsys.readouterr().err
