"""Preprocessors learn their state (vocabulary, categories, statistics) from the training rows only."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from modalfuse import MultimodalModel
from modalfuse.config import ModalityConfig
from modalfuse.data import featurize, make_preprocessor

TRAIN = {"progress": False, "max_epochs": 1, "batch_size": 8}


def _image_pixels(folder, frame: pd.DataFrame) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.open(folder / p).convert("L"), dtype=np.float64) / 255.0 for p in frame["image"]])


def _with_val_only_values(val: pd.DataFrame) -> pd.DataFrame:
    val = val.copy()
    val["text"] = [f"zebra{i} unseenword" for i in range(len(val))]
    val["color"] = "purple"
    val["x1"] = 1000.0 + np.arange(len(val))
    return val


def test_featurize_fits_only_when_asked(make_table, specs) -> None:
    """Featurizing validation/test rows never changes the fitted state."""
    csv, frame = make_table(n=12)
    train, val = frame.iloc[:8], _with_val_only_values(frame.iloc[8:])
    spec_list = specs("image", "text", "tabular")
    spec_list[2]["options"]["handle_unknown"] = "ignore"
    pres = {s["name"]: make_preprocessor(ModalityConfig.model_validate(s)) for s in spec_list}
    featurize(train, pres, None, None, fit=True, base_dir=csv.parent, cache=None)
    before = {n: repr(p.state_dict()) for n, p in pres.items()}
    featurize(val, pres, None, None, fit=False, base_dir=csv.parent, cache=None)
    assert {n: repr(p.state_dict()) for n, p in pres.items()} == before

    tab = pres["tabular"]
    assert tab.categories == [sorted(set(train["color"]))]
    assert tab.mean == pytest.approx([train["x1"].mean(), train["x2"].mean()], abs=1e-9)
    assert tab.std == pytest.approx([train["x1"].std(ddof=0), train["x2"].std(ddof=0)], rel=1e-9)
    assert "unseenword" not in pres["text"].vocab
    pixels = _image_pixels(csv.parent, train)
    assert pres["image"].mean == pytest.approx([pixels.mean()], abs=1e-4)
    assert pres["image"].std == pytest.approx([pixels.std()], abs=1e-4)


def test_fit_with_explicit_val_learns_from_train_only(make_table, specs) -> None:
    train_csv, train = make_table(n=12)
    val_csv, val = make_table(n=6, seed=1, name="val.csv", prefix="v")
    val = _with_val_only_values(val)
    # the validation images are much brighter than the training ones
    from PIL import Image

    for p in val["image"]:
        Image.fromarray(np.full((12, 12), 250, dtype=np.uint8), mode="L").save(val_csv.parent / p)
    val.to_csv(val_csv, index=False)

    spec_list = specs("image", "text", "tabular")
    spec_list[2]["options"]["handle_unknown"] = "ignore"
    model = MultimodalModel(spec_list, "label", train=TRAIN)
    model.fit(train_csv, val=val_csv)

    pres = model.preprocessors
    assert pres["tabular"].categories == [["blue", "green", "red"]]
    assert pres["tabular"].mean[0] == pytest.approx(train["x1"].mean(), abs=1e-9)
    vocab = set(pres["text"].vocab)
    assert not {t for t in vocab if t.startswith("zebra") or t.startswith("item")} - {f"item{i}" for i in range(12)}
    assert "unseenword" not in vocab
    assert {f"item{i}" for i in range(12)} <= vocab
    assert pres["image"].mean == pytest.approx([_image_pixels(train_csv.parent, train).mean()], abs=1e-4)
    assert model.reports["val"].rows_used == 6


def test_fit_with_split_learns_from_train_rows_only(make_table, specs) -> None:
    """With ``val_fraction``, the rows held out for validation do not reach vocabulary, statistics or categories."""
    n = 20
    csv, frame = make_table(n=n)
    frame = frame.copy()
    frame["color"] = [f"c{i}" for i in range(n)]  # one category per row: the fitted categories name the train rows
    frame.to_csv(csv, index=False)
    spec_list = specs("image", "text", "tabular")
    spec_list[2]["options"]["handle_unknown"] = "ignore"
    model = MultimodalModel(spec_list, "label", train={**TRAIN, "val_fraction": 0.25})
    model.fit(csv)

    n_val = model.reports["val"].rows_read
    assert n_val == 5 and model.reports["train"].rows_read == n - n_val
    train_rows = sorted(int(c[1:]) for c in model.preprocessors["tabular"].categories[0])
    assert len(train_rows) == n - n_val
    val_rows = sorted(set(range(n)) - set(train_rows))

    vocab = model.preprocessors["text"].vocab
    items = sorted(int(t[4:]) for t in vocab if re.fullmatch(r"item\d+", t))
    assert items == train_rows, "the vocabulary must come from the same (training) rows"
    assert not {f"item{i}" for i in val_rows} & set(vocab)

    train_frame = frame.loc[train_rows]
    assert model.preprocessors["tabular"].mean[0] == pytest.approx(train_frame["x1"].mean(), abs=1e-9)
    assert model.preprocessors["tabular"].mean[0] != pytest.approx(frame["x1"].mean(), abs=1e-6)
    assert model.preprocessors["image"].mean == pytest.approx([_image_pixels(csv.parent, train_frame).mean()], abs=1e-4)
