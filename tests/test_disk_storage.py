"""Disk storage (out-of-core shards) gives the same batches, fits and predictions as in-memory storage."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from PIL import Image

from modalfuse.config import ModalityConfig
from modalfuse.data import TargetEncoder, featurize, make_preprocessor
from modalfuse.data.cache import FeatureCache
from modalfuse.data.disk import featurize_disk
from modalfuse.data.entities import Indexed


def _table(folder, n=48, seed=0):
    """Images (some repeated, some missing), audio (some missing), numbers and categories with empty cells."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = int(rng.integers(3))
        img = (rng.random((8, 8)) * 60 + label * 80).astype(np.uint8)
        name = f"img{i % 30}.png"  # rows 30.. reuse earlier files: repeated entities
        if i < 30:
            Image.fromarray(img).save(folder / name)
        wav = f"a{i}.wav"
        t = np.arange(800) / 8000
        sf.write(folder / wav, (0.3 * np.sin(2 * np.pi * (300 + 200 * label) * t)).astype(np.float32), 8000, subtype="PCM_16")
        rows.append({
            "image": "" if i % 7 == 3 else name,
            "audio": "" if i % 5 == 1 else wav,
            "x": "" if i % 6 == 2 else float(rng.normal(label, 1.0)),
            "site": "" if i % 9 == 4 else f"s{int(rng.integers(3))}",
            "label": f"c{label}",
        })
    frame = pd.DataFrame(rows)
    path = folder / "table.csv"
    frame.to_csv(path, index=False)
    return path


MODALITIES = [
    {"name": "image", "kind": "image", "options": {"size": [8, 8], "channels": 1}},
    {"name": "audio", "kind": "audio", "options": {"sample_rate": 8000, "max_seconds": 0.1}},
    {"name": "record", "kind": "tabular", "options": {"numeric": ["x"], "categorical": ["site"], "handle_unknown": "ignore"}},
]


def _pres():
    return {m["name"]: make_preprocessor(ModalityConfig.model_validate(m)) for m in MODALITIES}


def _dense(value):
    return value.dense() if isinstance(value, Indexed) else value


def _count_pools(monkeypatch) -> list:
    """Batches of 8 cells, so that the 48-row table goes through the decode workers; the pools started are listed."""
    from modalfuse.data import decode

    pools, context = [], decode._context
    monkeypatch.setattr(decode, "_BATCH", 8)
    monkeypatch.setattr(decode, "_context", lambda pres=(): pools.append(1) or context(pres))
    return pools


@pytest.mark.parametrize("chunk_size,workers", [(7, 0), (100, 2)])
def test_disk_batches_equal_memory(tmp_path, monkeypatch, chunk_size, workers):
    path = _table(tmp_path)
    pools = _count_pools(monkeypatch)
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    mem_pres, disk_pres = _pres(), _pres()
    mem = featurize(frame, mem_pres, TargetEncoder("classification"), "label", fit=True, table=str(path), base_dir=tmp_path, cache=None)
    disk, val = featurize_disk(path, disk_pres, TargetEncoder("classification"), "label", fit=True, chunk_size=chunk_size,
                               workers=workers, cache=FeatureCache(tmp_path / "cache" / "features"))
    assert val is None
    assert len(pools) == (1 if workers else 0)  # workers wrote their rows into the shards themselves
    np.testing.assert_allclose(disk_pres["image"].mean, mem_pres["image"].mean, rtol=1e-12)
    assert disk_pres["record"].categories == mem_pres["record"].categories
    np.testing.assert_allclose(disk_pres["record"].mean, mem_pres["record"].mean, rtol=1e-12)
    np.testing.assert_allclose(disk_pres["image"].std, mem_pres["image"].std, rtol=1e-9)
    assert disk.report.to_dict() == mem.report.to_dict()
    assert disk.rows == mem.rows and torch.equal(disk.target, mem.target)
    idx = torch.tensor([5, 0, 33, 2, 31, 7, 40])
    a, b = mem[idx], disk[idx]
    for name in mem_pres:
        assert torch.equal(a.masks[name], b.masks[name])
        torch.testing.assert_close(_dense(b.inputs[name]), _dense(a.inputs[name]), rtol=0, atol=1e-6)
    assert isinstance(disk.columns["image"].values.take(np.array([0])), np.ndarray)
    assert disk.columns["image"].values.dtype == np.uint8 and disk.columns["audio"].values.dtype == np.int16


@pytest.mark.parametrize("workers", [0, 2])
def test_disk_skip_report_and_cache_reuse(tmp_path, monkeypatch, workers):
    path = _table(tmp_path)
    pools = _count_pools(monkeypatch)
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    frame.loc[4, "image"] = "broken.png"
    (tmp_path / "broken.png").write_bytes(b"not a png")
    frame.loc[9, "label"] = ""
    frame.to_csv(path, index=False)
    cache = FeatureCache(tmp_path / "cache" / "features")
    runs = []
    for _ in range(2):  # the second run reads the decoded shards from the cache
        pres = _pres()
        train, val = featurize_disk(path, pres, TargetEncoder("classification"), "label", fit=True, val_fraction=0.25,
                                    seed=3, on_error="skip", chunk_size=10, cache=cache, workers=workers)
        runs.append((train, val))
        assert train.report.rows_read + val.report.rows_read == 48
        for f in (train, val):
            assert f.report.rows_read == f.report.rows_used + len(f.report.skipped)
        skipped = {e.row for f in (train, val) for e in f.report.skipped}
        assert skipped == {4, 9}
        assert 4 <= len(val) <= 20
    assert len(pools) == (1 if workers else 0)  # the second run decodes nothing: its shards come from the cache
    assert len(list((tmp_path / "cache" / "shards").glob("*/values.bin"))) == 2  # image and audio
    for (t1, v1), (t2, v2) in [runs]:
        assert t1.rows == t2.rows
        torch.testing.assert_close(_dense(t1[torch.arange(len(t1))].inputs["image"]), _dense(t2[torch.arange(len(t2))].inputs["image"]))


def test_streaming_fit_equals_one_pass():
    """Fitting chunk by chunk (with counts) gives the one-pass fit: tables, text vocabulary, image statistics."""
    rng = np.random.default_rng(1)
    tab = make_preprocessor(ModalityConfig.model_validate(MODALITIES[2]))
    values = [([float(v) if rng.random() > 0.2 else np.nan], [None if rng.random() < 0.1 else f"k{rng.integers(5)}"]) for v in rng.normal(3, 2, 500)]
    tab.fit(values)
    chunked = make_preprocessor(ModalityConfig.model_validate(MODALITIES[2]))
    chunked.fit_start()
    for i in range(0, 500, 37):
        chunked.fit_update(values[i:i + 37])
    chunked.fit_finish()
    nums = np.array([v[0][0] for v in values])
    np.testing.assert_allclose(chunked.mean, [np.nanmean(nums)], rtol=1e-12)
    np.testing.assert_allclose(chunked.std, [np.nanstd(nums)], rtol=1e-12)
    assert chunked.state_dict()["categories"] == tab.state_dict()["categories"] == [sorted({v[1][0] for v in values} - {None})]

    text_cfg = ModalityConfig.model_validate({"name": "t", "kind": "text", "options": {"max_vocab": 12}})
    texts = [" ".join(rng.choice(list("abcdefghijklmnop"), size=6)) for _ in range(200)]
    one, many = make_preprocessor(text_cfg), make_preprocessor(text_cfg)
    one.fit(texts)
    many.fit_start()
    many.fit_update(texts[:50])
    many.fit_update(texts[50:120], counts=np.ones(70, int))
    many.fit_update(texts[120:])
    many.fit_finish()
    assert many.vocab == one.vocab and len(one.vocab) == 12

    img_cfg = ModalityConfig.model_validate(MODALITIES[0])
    imgs = [rng.random((1, 8, 8)).astype(np.float32) for _ in range(300)]
    counts = rng.integers(1, 4, 300)
    weighted = make_preprocessor(img_cfg)
    weighted.fit_start()
    weighted.fit_update(imgs[:100], counts[:100])
    weighted.fit_update(np.stack(imgs[100:]), counts[100:])
    weighted.fit_finish()
    repeated = np.stack([im for im, c in zip(imgs, counts) for _ in range(c)]).astype(np.float64)
    np.testing.assert_allclose(weighted.mean, [repeated.mean()], rtol=1e-10)
    np.testing.assert_allclose(weighted.std, [repeated.std() + 1e-6], rtol=1e-8)


def test_fit_and_predict_disk_equal_memory(tmp_path, monkeypatch):
    """The same training run on either storage: same batches in the same order, so the same predictions."""
    from modalfuse import MultimodalModel
    from modalfuse.data import loader

    loaders, make = [], loader.make_loader
    monkeypatch.setattr(loader, "make_loader", lambda *a, **k: loaders.append(a[4] if len(a) > 4 else k.get("workers")) or make(*a, **k))
    path = _table(tmp_path, n=60)
    results = {}
    for storage in ("memory", "disk"):
        model = MultimodalModel(MODALITIES, "label", model={"fusion": {"name": "concat", "dim": 16}},
                                train={"max_epochs": 2, "batch_size": 16, "val_fraction": 0.0, "progress": False, "seed": 1,
                                       "workers": 2 if storage == "disk" else 0},  # batches gathered by 2 loader workers
                                storage=storage, workers=2 if storage == "disk" else 0, chunk_size=13, cache_dir="none")
        model.fit(path)
        assert model.storage_ == storage
        results[storage] = model.predict_frame(path)
        assert model.reports["predict"].rows_read == 60
    assert loaders == [2]  # train.workers: 2 loader workers gather the disk training batches
    mem, disk = results["memory"], results["disk"]
    assert list(mem["row"]) == list(disk["row"]) and list(mem["prediction"]) == list(disk["prediction"])
    probs = [c for c in mem.columns if c.startswith("proba_")]
    np.testing.assert_allclose(disk[probs].to_numpy(), mem[probs].to_numpy(), atol=1e-5)


def test_auto_storage_follows_the_budget(tmp_path):
    from modalfuse.data.storage import choose_storage, decoded_bytes

    path = _table(tmp_path, n=20)
    pres = _pres()
    assert decoded_bytes(pres, 20) == 20 * (8 * 8 * 4 + 800 * 4 + 3 * 4)
    assert choose_storage("auto", path, pres, budget_gb=1.0) == "memory"
    assert choose_storage("auto", path, pres, budget_gb=1e-6) == "disk"
    assert choose_storage("memory", path, pres, budget_gb=1e-6) == "memory"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_cli_predict_streams_csv_and_parquet(tmp_path, suffix, capsys):
    """``modalfuse predict --chunk-size`` streams either table format: the same predictions as one pass."""
    from modalfuse import MultimodalModel
    from modalfuse.cli import main

    path = _table(tmp_path, n=30)
    model = MultimodalModel(MODALITIES, "label", model={"fusion": {"name": "concat", "dim": 16}},
                            train={"max_epochs": 1, "batch_size": 16, "val_fraction": 0.0, "progress": False}, workers=0)
    model.fit(path)
    model.save(tmp_path / "model")
    table = path
    if suffix == ".parquet":
        table = tmp_path / "table.parquet"
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), table, row_group_size=8)
    out = tmp_path / "pred.csv"
    assert main(["predict", str(tmp_path / "model"), str(table), "-o", str(out), "--chunk-size", "7"]) == 0
    assert "30 rows read, 30 used, 0 skipped" in capsys.readouterr().out
    streamed = pd.read_csv(out)
    whole = model.predict_frame(path)
    assert list(streamed["row"]) == list(range(30))
    np.testing.assert_allclose(streamed["proba_c1"], whole["proba_c1"], atol=1e-6)
