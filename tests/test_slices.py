"""Slice tables: bootstrap intervals, gaps to the overall metric, Bonferroni-flagged significance, presence patterns."""
from __future__ import annotations

import numpy as np
import pytest

from modalfuse.errors import ConfigError
from modalfuse.evaluate.slices import markdown, model_slices, per_sample_scores, presence_patterns, slice_table


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_clearly_worse_slice_is_flagged_and_equal_slices_are_not() -> None:
    scores = np.r_[np.ones(200), np.tile([1.0, 0.0], 100)]  # slice a: 100 %, slice b: 50 %, overall 75 %
    group = ["a"] * 200 + ["b"] * 200
    even = np.tile(["x", "x", "y", "y"], 100)  # x and y both score exactly 50 % within b ... and 100 % within a
    t = slice_table(scores, {"group": group, "even": even}, "accuracy", n_boot=500, seed=0)
    overall = t.iloc[0]
    assert overall["slice"] == "overall" and overall["accuracy"] == pytest.approx(0.75) and overall["n"] == 400
    a = t[(t["slice"] == "group") & (t["value"] == "a")].iloc[0]
    b = t[(t["slice"] == "group") & (t["value"] == "b")].iloc[0]
    assert a["gap"] == pytest.approx(0.25) and b["gap"] == pytest.approx(-0.25)
    assert a["significant"] and b["significant"] and a["p_value"] < 0.01
    assert b["ci_low"] < 0.5 < b["ci_high"] and b["gap_low"] < -0.25 < b["gap_high"] < 0
    for value in ("x", "y"):
        row = t[(t["slice"] == "even") & (t["value"] == value)].iloc[0]
        assert row["gap"] == pytest.approx(0.0) and not row["significant"] and row["p_value"] > 0.5


def test_a_small_perfect_slice_is_not_significant_by_itself() -> None:
    # 14 samples all right when 92 % of all are: a random 14 are all right 0.92^14 ≈ 31 % of the time
    rng = np.random.default_rng(3)
    scores = (rng.random(2000) < 0.92).astype(float)
    group = np.array(["big"] * 2000, dtype=object)
    group[np.flatnonzero(scores == 1)[:14]] = "small"
    t = slice_table(scores, {"g": group}, n_boot=2000, seed=0)
    small = t[t["value"] == "small"].iloc[0]
    assert small["accuracy"] == 1.0 and small["ci_low"] == 1.0  # the bootstrap interval degenerates ...
    assert 0.15 < small["p_value"] < 0.5 and not small["significant"]  # ... the permutation test does not


def test_interval_width_matches_the_binomial_standard_error() -> None:
    rng = np.random.default_rng(0)
    scores = (rng.random(400) < 0.8).astype(float)
    t = slice_table(scores, {}, "accuracy", n_boot=2000, seed=1)
    p = scores.mean()
    expected = 2 * 1.96 * np.sqrt(p * (1 - p) / len(scores))
    assert t.iloc[0]["ci_high"] - t.iloc[0]["ci_low"] == pytest.approx(expected, rel=0.15)


def test_flags_use_a_bonferroni_threshold_and_min_n_drops_small_slices() -> None:
    rng = np.random.default_rng(2)
    scores = (rng.random(300) < 0.7).astype(float)
    values = rng.integers(0, 6, size=300).astype(str)
    values[:3] = "tiny"
    t = slice_table(scores, {"v": values}, "accuracy", n_boot=400, seed=0, min_n=10)
    tested = t[t["slice"] == "v"]
    assert "tiny" not in set(tested["value"]) and len(tested) == 6
    assert (tested["significant"] == (tested["p_value"] < 0.05 / 6)).all()


def test_per_sample_scores_and_presence_patterns() -> None:
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.7, 0.3]])
    s = per_sample_scores("classification", np.array([0, 0, 0]), proba)
    assert list(s["accuracy"]) == [1.0, 0.0, 1.0] and s["log_loss"][1] == pytest.approx(-np.log(0.4))
    r = per_sample_scores("regression", np.array([1.0, 2.0]), np.array([1.5, 0.0]))
    assert list(r["abs_error"]) == [0.5, 2.0] and list(r["squared_error"]) == [0.25, 4.0]
    pats = presence_patterns({"image": np.array([1, 0, 0], bool), "audio": np.array([1, 1, 0], bool)})
    assert list(pats) == ["image+audio", "audio", "none"]
    t = slice_table(np.array([1.0, 0.0, 1.0]), {"c": ["a", np.nan, None]}, n_boot=50)
    assert dict(zip(t["value"][1:], t["n"][1:])) == {"(missing)": 2, "a": 1}
    with pytest.raises(ConfigError, match="has 2 values for 3 samples"):
        slice_table(np.ones(3), {"c": ["a", "b"]})


def test_model_slices_on_a_fitted_model(tmp_path) -> None:
    from conftest import FAST_TRAIN, build_table, modality_specs
    from modalfuse.api import MultimodalModel

    csv, frame = build_table(tmp_path, n=24, seed=5)
    model = MultimodalModel(modality_specs("image", "tabular"), "label", {"fusion": {"name": "concat", "dim": 8}}, FAST_TRAIN)
    model.fit(csv)
    frame = frame.assign(image=[str(tmp_path / p) for p in frame["image"]])
    frame.loc[:3, "image"] = ""  # four rows without an image
    t = model_slices(model, frame, ["color"], n_boot=200)
    assert t.iloc[0]["n"] == 24
    assert t.iloc[0]["accuracy"] == pytest.approx(model.evaluate(frame)["accuracy"])
    assert dict(zip(t[t["slice"] == "color"]["value"], t[t["slice"] == "color"]["n"])) == {"blue": 8, "green": 8, "red": 8}
    pres = t[t["slice"] == "modalities present"]
    assert dict(zip(pres["value"], pres["n"])) == {"image+tabular": 20, "tabular": 4}
    text = markdown(t)
    assert text.count("\n") == len(t) + 1 and "| color | blue | 8 |" in text
    with pytest.raises(ConfigError, match="not in the table"):
        model_slices(model, frame, ["speaker"])
