"""Bad input: DataErrors that name table/row/column/file, skip reports that reconcile, missing ≠ error, feature cache."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modalfuse import DataError, MultimodalModel
from modalfuse.config import ModalityConfig
from modalfuse.data import featurize, make_preprocessor
from modalfuse.data.cache import FeatureCache
from modalfuse.kinds.audio import AudioPreprocessor
from modalfuse.kinds.image import ImagePreprocessor
from modalfuse.data.readers import read_table

NO_TRAIN = {"progress": False, "max_epochs": 1}


# --------------------------------------------------------------------------- corruptions

def corrupt_image(folder: Path, frame: pd.DataFrame, row: int) -> str:
    path = folder / frame.loc[row, "image"]
    path.write_bytes(np.random.default_rng(row).bytes(300))
    return str(path)


def truncate_wav(folder: Path, frame: pd.DataFrame, row: int) -> str:
    path = folder / frame.loc[row, "audio"]
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return str(path)


def set_cell(csv: Path, frame: pd.DataFrame, row: int, column: str, value) -> pd.DataFrame:
    frame = frame.copy()
    frame[column] = frame[column].astype(object)
    frame.loc[row, column] = value
    frame.to_csv(csv, index=False)
    return frame


# --------------------------------------------------------------------------- on_error = raise

@pytest.mark.parametrize("kind", ["image", "audio", "numeric"])
def test_bad_cell_raises_data_error_naming_where(kind, tiny_table, specs) -> None:
    csv, frame = tiny_table
    folder, row = csv.parent, 5
    if kind == "image":
        bad_file, column, mods, reason = corrupt_image(folder, frame, row), "image", ("image", "tabular"), "cannot decode image"
    elif kind == "audio":
        bad_file, column, mods, reason = truncate_wav(folder, frame, row), "audio", ("audio", "tabular"), "truncated WAV"
    else:
        set_cell(csv, frame, row, "x1", "twelve")
        bad_file, column, mods, reason = None, "x1", ("tabular",), "expected a number, got 'twelve'"
    model = MultimodalModel(specs(*mods), "label", train=NO_TRAIN, on_error="raise")
    with pytest.raises(DataError) as info:
        model.fit(csv)
    err, text = info.value, str(info.value)
    assert err.table == str(csv) and str(csv) in text
    assert err.row == row and f"row {row}" in text
    assert err.column == column and f"column {column!r}" in text
    assert reason in text
    if bad_file:
        assert err.file == bad_file and f"file {bad_file}" in text
    assert model.net is None, "training must not start on bad data"


def test_unknown_category_raises_with_handle_unknown_error(make_table, specs) -> None:
    train_csv, _ = make_table(n=12)
    val_csv, val = make_table(n=6, seed=1, name="val.csv", prefix="v")
    set_cell(val_csv, val, 2, "color", "purple")
    model = MultimodalModel(specs("tabular"), "label", train=NO_TRAIN)
    assert model.modalities[0].options.handle_unknown == "error"
    with pytest.raises(DataError) as info:
        model.fit(train_csv, val=val_csv)
    err, text = info.value, str(info.value)
    assert err.table == str(val_csv) and str(val_csv) in text
    assert err.row == 2 and "row 2" in text
    assert err.column == "color" and "column 'color'" in text
    assert "unknown category 'purple'" in text and "'blue'" in text


def test_unknown_category_ignored_when_asked(make_table, specs) -> None:
    train_csv, train = make_table(n=12)
    val = train.iloc[:3].copy()
    val["color"] = ["purple", "red", None]
    spec = specs("tabular")[0]
    spec["options"]["handle_unknown"] = "ignore"
    pre = make_preprocessor(ModalityConfig.model_validate(spec))
    featurize(train, {"tabular": pre}, None, None, fit=True)
    feats = featurize(val, {"tabular": pre}, None, None)
    cats = feats.inputs["tabular"][:, -1]
    assert cats[0] == 0 and cats[2] == 0 and cats[1] == pre.categories[0].index("red") + 1
    assert feats.report.rows_used == 3


# --------------------------------------------------------------------------- on_error = skip

def test_skip_drops_bad_rows_and_writes_reports(make_table, specs, tmp_path) -> None:
    train_csv, train = make_table(n=16)
    val_csv, val = make_table(n=6, seed=1, name="val.csv", prefix="v")
    folder = train_csv.parent
    bad_image = corrupt_image(folder, train, 3)
    bad_wav = truncate_wav(folder, train, 5)
    set_cell(train_csv, train, 7, "x2", "n/a?")
    set_cell(val_csv, val, 4, "color", "purple")

    run = tmp_path / "run"
    model = MultimodalModel(specs("image", "audio", "tabular"), "label", train={**NO_TRAIN, "batch_size": 8}, on_error="skip")
    model.fit(train_csv, val=val_csv, run_dir=run)

    rep = model.reports["train"]
    assert rep.table == str(train_csv)
    assert (rep.rows_read, rep.rows_used, len(rep.skipped)) == (16, 13, 3)
    assert rep.rows_read == rep.rows_used + len(rep.skipped)
    by_row = {e.row: e for e in rep.skipped}
    assert set(by_row) == {3, 5, 7}
    assert by_row[3].column == "image" and by_row[3].file == bad_image and "cannot decode image" in by_row[3].reason
    assert by_row[5].column == "audio" and by_row[5].file == bad_wav and "truncated WAV" in by_row[5].reason
    assert by_row[7].column == "x2" and "expected a number" in by_row[7].reason and "n/a?" in by_row[7].reason

    vrep = model.reports["val"]
    assert (vrep.rows_read, vrep.rows_used) == (6, 5)
    assert [(e.row, e.column) for e in vrep.skipped] == [(4, "color")]
    assert "unknown category 'purple'" in vrep.skipped[0].reason

    # files in the run folder
    report = json.loads((run / "train_report.json").read_text())
    assert report["rows_read"] == report["rows_used"] + report["rows_skipped"] == 16
    assert {s["row"] for s in report["skipped"]} == {3, 5, 7}
    skipped = pd.read_csv(run / "train_skipped.csv")
    assert list(skipped.columns) == ["row", "column", "file", "reason"]
    assert sorted(skipped["row"]) == [3, 5, 7]
    assert set(skipped.loc[skipped["row"] == 3, "file"]) == {bad_image}
    vreport = json.loads((run / "val_report.json").read_text())
    assert (vreport["rows_read"], vreport["rows_used"], vreport["rows_skipped"]) == (6, 5, 1)
    assert (run / "val_skipped.csv").exists()
    assert (run / "metrics.csv").exists()

    # predicting on the same bad table skips the same rows and says so
    frame = model.predict_frame(train_csv)
    assert len(frame) == 13 and not {3, 5, 7} & set(frame["row"])
    assert model.reports["predict"].rows_read == 16


def test_skip_report_counts_rows_without_any_modality(specs) -> None:
    frame = pd.DataFrame({"x1": [1.0, None, 3.0, 4.0], "x2": [1.0, None, 2.0, 5.0], "color": ["red", None, "blue", "red"], "label": ["a", "b", "a", "b"]})
    pre = make_preprocessor(ModalityConfig.model_validate(specs("tabular")[0]))
    with pytest.raises(DataError, match="row 1: no modality is present"):
        featurize(frame, {"tabular": pre}, None, None, fit=True, table="t.csv")
    feats = featurize(frame, {"tabular": pre}, None, None, fit=True, table="t.csv", on_error="skip")
    assert feats.rows == [0, 2, 3]
    assert (feats.report.rows_read, feats.report.rows_used) == (4, 3)
    assert "no modality" in feats.report.skipped[0].reason
    assert "4 rows read, 3 used, 1 skipped" in feats.report.summary()


# --------------------------------------------------------------------------- missing is not an error

def test_absent_file_and_empty_cell_mark_modality_missing(tiny_table, specs) -> None:
    csv, frame = tiny_table
    folder = csv.parent
    (folder / frame.loc[1, "image"]).unlink()
    (folder / frame.loc[2, "audio"]).unlink()
    frame = set_cell(csv, frame, 3, "image", "")
    frame = set_cell(csv, frame, 4, "text", "")
    frame = set_cell(csv, frame, 6, "x1", "")
    table = read_table(csv)
    assert pd.isna(table.loc[3, "image"])

    mods = [ModalityConfig.model_validate(s) for s in specs("image", "audio", "text", "tabular")]
    pres = {m.name: make_preprocessor(m) for m in mods}
    feats = featurize(table, pres, None, None, fit=True, table=str(csv), base_dir=folder, on_error="raise", cache=None)
    assert feats.report.skipped == []
    assert feats.report.rows_used == len(frame)
    masks = {k: v.numpy() for k, v in feats.masks.items()}
    assert not masks["image"][1] and not masks["image"][3] and masks["image"].sum() == len(frame) - 2
    assert not masks["audio"][2] and masks["audio"].sum() == len(frame) - 1
    assert not masks["text"][4] and masks["text"].sum() == len(frame) - 1
    assert masks["tabular"].all(), "one empty numeric cell is a missing value, not a missing modality"
    assert feats.report.missing == {"image": 2, "audio": 1, "text": 1, "tabular": 0}
    # the empty numeric cell is flagged by its missing indicator (numbers: x1, x2; indicators: x1, x2; category)
    assert feats.inputs["tabular"][6, 2] == 1.0 and feats.inputs["tabular"][6, 0] == 0.0
    assert feats.inputs["tabular"][5, 2] == 0.0


# --------------------------------------------------------------------------- feature cache

@pytest.fixture
def count_decodes(monkeypatch):
    calls = {"image": 0, "audio": 0}

    def wrap(cls, kind):
        original = cls._decode

        def counted(self, cells, base_dir):
            calls[kind] += 1
            return original(self, cells, base_dir)

        monkeypatch.setattr(cls, "_decode", counted)

    wrap(ImagePreprocessor, "image")
    wrap(AudioPreprocessor, "audio")
    return calls


def _fresh(specs, *names):
    mods = [ModalityConfig.model_validate(s) for s in specs(*names)]
    return {m.name: make_preprocessor(m) for m in mods}


def test_feature_cache_hits_and_misses(tiny_table, specs, tmp_path, count_decodes) -> None:
    csv, frame = tiny_table
    folder, n = csv.parent, len(frame)
    cache = FeatureCache(tmp_path / "features")

    first = featurize(frame, _fresh(specs, "image", "audio"), None, None, fit=True, base_dir=folder, cache=cache)
    assert count_decodes == {"image": n, "audio": n}
    assert len(list((tmp_path / "features").glob("*.safetensors"))) == 2

    second = featurize(frame, _fresh(specs, "image", "audio"), None, None, fit=True, base_dir=folder, cache=cache)
    assert count_decodes == {"image": n, "audio": n}, "second featurize of the same table must hit the cache"
    for name in ("image", "audio"):
        assert np.array_equal(first.inputs[name].numpy(), second.inputs[name].numpy())

    # changed content of one image file: the image column misses, the audio column still hits
    from conftest import write_png

    write_png(folder / frame.loc[0, "image"], 1, np.random.default_rng(99))
    third = featurize(frame, _fresh(specs, "image", "audio"), None, None, fit=True, base_dir=folder, cache=cache)
    assert count_decodes == {"image": 2 * n, "audio": n}
    assert not np.array_equal(first.inputs["image"][0].numpy(), third.inputs["image"][0].numpy())

    # changed decoding options miss as well
    spec = specs("image")[0]
    spec["options"]["size"] = [8, 8]
    pre = make_preprocessor(ModalityConfig.model_validate(spec))
    fourth = featurize(frame, {"image": pre}, None, None, fit=True, base_dir=folder, cache=cache)
    assert count_decodes["image"] == 3 * n
    assert fourth.inputs["image"].shape[-2:] == (8, 8)


def test_feature_cache_keeps_errors_and_missing(tiny_table, specs, tmp_path, count_decodes) -> None:
    csv, frame = tiny_table
    folder, n = csv.parent, len(frame)
    bad = corrupt_image(folder, frame, 2)
    (folder / frame.loc[4, "image"]).unlink()
    cache = FeatureCache(tmp_path / "features")
    reports = []
    for _ in range(2):
        pres = _fresh(specs, "image", "tabular")
        feats = featurize(frame, pres, None, None, fit=True, table="t.csv", base_dir=folder, cache=cache, on_error="skip")
        reports.append(feats)
    assert count_decodes["image"] == n, "only the first pass decodes"
    for feats in reports:
        assert [(e.row, e.column, e.file) for e in feats.report.skipped] == [(2, "image", bad)]
        assert "cannot decode image" in feats.report.skipped[0].reason
        assert feats.report.missing["image"] == 1
        assert 4 in feats.rows and not feats.masks["image"][feats.rows.index(4)]
    with pytest.raises(DataError, match=r"t\.csv, row 2, column 'image', file "):
        featurize(frame, _fresh(specs, "image", "tabular"), None, None, fit=True, table="t.csv", base_dir=folder, cache=cache)


# --------------------------------------------------------------------------- the target

def _target_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=40), "y": ["p", "q"] * 20})
    frame.loc[3, "y"] = None
    return frame


def test_empty_target_is_skipped_and_reported() -> None:
    mods = [{"name": "t", "kind": "tabular", "columns": ["a"], "encoder": {"dim": 4, "options": {"hidden": 8}}}]
    model = MultimodalModel(mods, "y", train={**NO_TRAIN, "val_fraction": 0.25}, on_error="skip")
    model.fit(_target_frame())
    skipped = [e for r in (model.reports["train"], model.reports["val"]) for e in r.skipped]
    assert [(e.row, e.column) for e in skipped] == [(3, "y")]
    assert "the target is empty" in skipped[0].reason
    assert model.reports["train"].rows_read + model.reports["val"].rows_read == 40
    assert model.target_encoder.classes == ["p", "q"]


def test_empty_target_raises_data_error_naming_row() -> None:
    mods = [{"name": "t", "kind": "tabular", "columns": ["a"]}]
    model = MultimodalModel(mods, "y", train={**NO_TRAIN, "val_fraction": 0.25}, on_error="raise")
    with pytest.raises(DataError) as info:
        model.fit(_target_frame())
    assert info.value.row == 3 and info.value.column == "y" and "the target is empty" in str(info.value)


def test_file_bytes_decode_like_files_and_bad_bytes_raise(tmp_path) -> None:
    """Images and audio may arrive as file bytes (uploads): same arrays as from the file, same errors."""
    import io as _io

    import numpy as np
    import soundfile as sf
    from PIL import Image

    from modalfuse.config import ModalityConfig
    from modalfuse.data import make_preprocessor
    from modalfuse.errors import DataError

    img = Image.fromarray((np.arange(64).reshape(8, 8) * 4).astype("uint8"))
    img.save(tmp_path / "a.png")
    pre = make_preprocessor(ModalityConfig(name="i", kind="image", options={"size": [8, 8]}))
    np.testing.assert_array_equal(pre.decode(((tmp_path / "a.png").read_bytes(),), None), pre.decode((str(tmp_path / "a.png"),), None))
    with pytest.raises(DataError, match="cannot decode image"):
        pre.decode((b"not an image",), None)

    buf = _io.BytesIO()
    sf.write(buf, np.sin(np.arange(800) / 5).astype("float32"), 8000, format="WAV", subtype="PCM_16")
    wav = buf.getvalue()
    (tmp_path / "a.wav").write_bytes(wav)
    audio = make_preprocessor(ModalityConfig(name="a", kind="audio", options={"sample_rate": 8000, "max_seconds": 0.2}))
    np.testing.assert_array_equal(audio.decode((wav,), None), audio.decode((str(tmp_path / "a.wav"),), None))
    with pytest.raises(DataError, match="truncated WAV"):
        audio.decode((wav[: len(wav) // 2],), None)


def test_numbers_written_as_text_are_judged_as_numbers():
    """A label column of object dtype whose every value is a number ("0", "2.5") is read as those numbers, not called
    ambiguous with an empty list of text values."""
    import pandas as pd

    from modalfuse.data import infer_task
    from modalfuse.errors import ConfigError

    assert infer_task(pd.Series(["0", "1", "2", "1"], name="y")) == "classification"
    assert infer_task(pd.Series(["0.5", "1.25", "2.75", "3.5"], name="y")) == "regression"
    with pytest.raises(ConfigError, match=r"3 of 4 values are numbers but others are text \(\['x'\]\)"):
        infer_task(pd.Series(["0", "1", "x", "2"], name="y"))
