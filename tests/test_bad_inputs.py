"""The bad-input corpus (tests/bad_inputs/cases.yaml) through the real CLI, plus the cases that need a process:
signals, racing run folders, and a damaged feature cache."""
from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from modalfuse.cli import main

ROOT = Path(__file__).resolve().parents[1]
CASES = yaml.safe_load((ROOT / "tests/bad_inputs/cases.yaml").read_text())["cases"]
REQUESTS = yaml.safe_load((ROOT / "tests/bad_inputs/requests.yaml").read_text())["requests"]


def _many_int_classes() -> str:
    return "a,b,y\n" + "".join(f"{i},{i + 1},{i}\n" for i in range(68))


def _wav(seconds: float = 0.2, rate: int = 8000) -> bytes:
    import io

    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.zeros(int(seconds * rate), dtype=np.float32), rate, format="WAV")
    return buf.getvalue()


def _png(width: int = 8, height: int = 8) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (width, height), 100).save(buf, "PNG")
    return buf.getvalue()


GENERATORS = {"many_int_classes": _many_int_classes, "wav": _wav, "png": _png,
              "wav_truncated": lambda: _wav()[:-600], "png_truncated": lambda: _png(64, 64)[:60],
              "png_large": lambda: _png(1000, 1000)}


# ----------------------------------------------------------------------------- HTTP requests
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """TestClients over two small models: vector+text+tabular ("plain"), image+audio+vector ("media"), and plain with a key."""
    import numpy as np
    import pandas as pd
    from fastapi.testclient import TestClient

    from modalfuse import MultimodalModel
    from modalfuse.serve.app import create_app
    from modalfuse.serve.limits import ServeSettings

    folder = tmp_path_factory.mktemp("served")
    n = 12
    plain = pd.DataFrame({"vec": [np.full(3, i % 2, dtype=np.float32) for i in range(n)], "text": ["good", "bad"] * (n // 2),
                          "x1": np.arange(n, dtype=float), "color": ["red", "blue", "7"] * (n // 3), "label": ["a", "b"] * (n // 2)})
    specs = [{"name": "vec", "kind": "vector"}, {"name": "text", "kind": "text"},
             {"name": "tab", "kind": "tabular", "columns": ["x1", "color"], "options": {"numeric": ["x1"], "categorical": ["color"]}}]
    plain_model = MultimodalModel(specs, "label", train=TRAIN).fit(plain)
    rows = []
    for i in range(n):
        (folder / f"{i}.png").write_bytes(_png())
        (folder / f"{i}.wav").write_bytes(_wav())
        rows.append({"image": str(folder / f"{i}.png"), "audio": str(folder / f"{i}.wav"), "x": float(i % 2), "label": i % 2})
    specs = [{"name": "image", "kind": "image", "options": {"size": [8, 8]}}, {"name": "audio", "kind": "audio"},
             {"name": "x", "kind": "vector", "columns": ["x"]}]
    media_model = MultimodalModel(specs, "label", task="classification", train=TRAIN).fit(pd.DataFrame(rows))
    clients = {"plain": TestClient(create_app(plain_model, ServeSettings(max_records=50, max_body_mb=1.0, max_decoded_mb=1.0)),
                                   raise_server_exceptions=False),
               "media": TestClient(create_app(media_model, ServeSettings(max_decoded_mb=1.0)), raise_server_exceptions=False),
               "keyed": TestClient(create_app(plain_model, ServeSettings(api_key="k3y")), raise_server_exceptions=False)}
    for c in clients.values():
        c.__enter__()
    yield clients
    for c in clients.values():
        c.__exit__(None, None, None)


def _expand(value):
    """``{"$b64": generator}`` → base64 of generated file bytes; ``{"$repeat": [value, n]}`` → a list of n copies."""
    import base64

    if isinstance(value, dict) and "$b64" in value:
        return base64.b64encode(GENERATORS[value["$b64"]]()).decode()
    if isinstance(value, dict) and "$repeat" in value:
        item, n = value["$repeat"]
        return [_expand(item)] * n
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    return value


@pytest.mark.parametrize("case", REQUESTS, ids=[c["id"] for c in REQUESTS])
def test_bad_request(case, served):
    client = served[case.get("model", "plain")]
    kwargs = {"headers": case.get("headers", {})}
    if "json" in case:
        kwargs["json"] = _expand(case["json"])
    if "body" in case:
        body = case["body"]
        kwargs["content"] = body.encode() if isinstance(body, str) else ("[" * body["nest"] + "]" * body["nest"]).encode()
        kwargs["headers"] = {"content-type": "application/json", **kwargs["headers"]}
    if "form" in case:
        kwargs["files"] = {k: (None, v if isinstance(v, str) else "[" * v["nest"] + "]" * v["nest"]) for k, v in case["form"].items()}
    if "files" in case:
        kwargs["files"] = {k: (f"{k}.bin", GENERATORS[g]()) for k, g in case["files"].items()}
    r = client.request(case.get("method", "POST"), case.get("path", "/predict"), **kwargs)
    assert r.status_code == case["status"], r.text
    if r.status_code != 200:
        body = r.json()
        assert set(body) >= {"error", "message"} and "Traceback" not in r.text
        assert case.get("message", "").lower() in body["message"].lower(), body
        if "field" in case:
            assert body.get("field") == case["field"], body


TRAIN = {"max_epochs": 1, "batch_size": 4, "progress": False, "val_fraction": 0.0, "threads": 1, "seed": 0}


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A trained vector model (columns a, b → y), its table and its bundle, copied into each case that asks."""
    import pandas as pd

    from modalfuse import MultimodalModel
    from modalfuse.serve import export_bundle

    folder = tmp_path_factory.mktemp("saved")
    table = pd.DataFrame({"a": [0.1, 0.9, 0.2, 0.8, 0.3, 0.7], "b": [1.0, 0.0, 1.0, 0.0, 1.0, 0.0], "y": ["no", "yes"] * 3})
    table.to_csv(folder / "t.csv", index=False)
    model = MultimodalModel([{"name": "x", "kind": "vector", "columns": ["a", "b"]}], "y", train=TRAIN).fit(table)
    model.save(folder / "m")
    export_bundle(model, folder / "b")
    return folder


def _damage(folder: Path, steps: list[dict]) -> None:
    """Alter copied model folders / bundles: flip or cut a file, delete one, add one, or set a JSON key (``reseal``
    rewrites the manifest, so that what lies behind the checksum check is reached)."""
    import json

    from modalfuse.core.storage import MANIFEST, write_manifest

    for step in steps:
        path = folder / step["file"]
        if step["op"] == "flip":
            data = bytearray(path.read_bytes())
            data[len(data) // 2] ^= 0xFF
            path.write_bytes(bytes(data))
        elif step["op"] == "truncate":
            path.write_bytes(path.read_bytes()[: step.get("keep", 40)])
        elif step["op"] == "delete":
            path.unlink()
        elif step["op"] == "write":
            path.write_text(step["text"])
        elif step["op"] == "json":
            doc = json.loads(path.read_text())
            for dotted, value in step["set"].items():
                node, *keys = [doc, *dotted.split(".")]
                for k in keys[:-1]:
                    node = node[int(k)] if isinstance(node, list) else node[k]
                node[int(keys[-1]) if isinstance(node, list) else keys[-1]] = value
            path.write_text(json.dumps(doc))
        if step.get("reseal"):
            (path.parent / MANIFEST).unlink()
            write_manifest(path.parent)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input(case, tmp_path, capsys, monkeypatch, request):
    monkeypatch.setenv("MODALFUSE_CACHE", str(tmp_path / "cache"))
    if case.get("saved"):
        import shutil

        saved = request.getfixturevalue("saved_model")
        for name in ("m", "b"):
            shutil.copytree(saved / name, tmp_path / name)
        shutil.copy(saved / "t.csv", tmp_path / "t.csv")
        _damage(tmp_path, case.get("damage", []))
    for name in case.get("mkdir", []):
        (tmp_path / name).mkdir()
    for name, text in (case.get("files") or {}).items():
        (tmp_path / name).write_text(text.replace("{tmp}", str(tmp_path)))
    for name, hexbytes in (case.get("bytes") or {}).items():
        (tmp_path / name).write_bytes(bytes.fromhex(hexbytes.replace(" ", "")))
    for name, gen in (case.get("generate") or {}).items():
        content = GENERATORS[gen]()
        (tmp_path / name).write_bytes(content) if isinstance(content, bytes) else (tmp_path / name).write_text(content)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in case["argv"]]
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse
        code = stop.code
    err = capsys.readouterr().err
    assert code == case["code"], err
    assert case["stderr"].lower() in err.lower()
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error") or "error:" in line]
    assert len(lines) == (1 if case["code"] else 0), err
    if case.get("no_file"):
        assert not glob.glob(str(tmp_path / case["no_file"]))
    if case.get("report"):  # the run's train report counts what was read and skipped
        import json

        report = json.loads(Path(glob.glob(str(tmp_path / "runs/*/train_report.json"))[0]).read_text())
        assert {k: report[k] for k in case["report"]} == case["report"], report


def _table(folder: Path, rows: int = 400) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    lines = ["a,b,y"] + [f"{rng.normal():.4f},{rng.normal():.4f},{i % 2}" for i in range(rows)]
    (folder / "train.csv").write_text("\n".join(lines) + "\n")
    cfg = folder / "c.yaml"
    cfg.write_text("data: {train: train.csv, target: y, cache_dir: none}\nmodalities: [{name: x, kind: vector, columns: [a, b]}]\n"
                   "preset: none\ntrain: {max_epochs: 100000, patience: 0, progress: false, threads: 1, batch_size: 4}\n")
    return cfg


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_stopped_training_exits_nonzero_and_says_how_to_resume(tmp_path, sig, code):
    cfg = _table(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MODALFUSE_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "modalfuse.cli", "train", str(cfg), "--run-dir", str(tmp_path / "runs")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 180  # a loaded machine can take a minute to import torch and Lightning
    while not glob.glob(str(tmp_path / "runs/*/metrics.csv")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert f"stopped by {signal.Signals(sig).name}" in err and "no model" in err and "continue with: modalfuse train" in err
    assert not glob.glob(str(tmp_path / "runs/*/model"))


def test_racing_trainings_get_distinct_run_folders(tmp_path):
    from modalfuse.cli.models import _run_dir

    with ThreadPoolExecutor(8) as pool:
        folders = list(pool.map(lambda _: _run_dir(str(tmp_path), "race"), range(8)))
    assert len(set(folders)) == 8 and all(f.is_dir() for f in folders)


def test_damaged_cache_entry_is_reported_and_rebuilt(tmp_path, capsys):
    import numpy as np

    from modalfuse.data.cache import FeatureCache

    cache = FeatureCache(tmp_path)
    cache.save("k", [np.ones(3, dtype=np.float32), None], {}, np.zeros(3, dtype=np.float32))
    assert cache.load("k") is not None
    f = tmp_path / "k.safetensors"
    f.write_bytes(f.read_bytes()[:40])
    assert cache.load("k") is None
    assert "damaged" in capsys.readouterr().err and not f.exists()


def test_cache_key_depends_on_the_tables_folder(tmp_path):
    from modalfuse.data.cache import content_key

    cells = [("img.png",)]
    assert content_key("image", {}, cells, tmp_path / "a") != content_key("image", {}, cells, tmp_path / "b")


def test_na_words_stay_values_unless_configured(tmp_path):
    from modalfuse.data.readers import read_table

    (tmp_path / "t.csv").write_text("cat,y\nNA,NA\nNone,b\n,c\n")
    frame = read_table(tmp_path / "t.csv")
    assert frame["cat"].tolist()[:2] == ["NA", "None"] and frame["cat"].isna().tolist() == [False, False, True]
    assert read_table(tmp_path / "t.csv", ["None"])["cat"].isna().tolist() == [False, True, True]


def test_imputed_and_unknown_cells_are_counted_in_the_report():
    import pandas as pd

    from modalfuse import MultimodalModel

    frame = pd.DataFrame({"a": [1.0, None, 3.0, 4.0], "c": ["u", "v", None, "u"], "y": [0, 1, 0, 1]})
    spec = {"name": "t", "kind": "tabular", "columns": ["a", "c"], "options": {"numeric": ["a"], "categorical": ["c"], "handle_unknown": "ignore"}}
    model = MultimodalModel([spec], "y", train=TRAIN).fit(frame)
    assert model.reports["train"].imputed == {"t": {"empty numeric cells imputed": 1, "empty categorical cells": 1}}
    report = model.featurize(pd.DataFrame({"a": [None, 2.0, None], "c": ["w", "u", "zz"], "y": [0, 1, 1]})).report
    assert report.imputed == {"t": {"empty numeric cells imputed": 2, "unseen categories mapped to unknown": 2}}
    assert "2 unseen categories mapped to unknown" in report.summary() and report.to_dict()["imputed"] == report.imputed


def test_na_words_survive_saving_and_chunked_prediction(tmp_path):
    """A category "NA" stays a category in whole and chunked prediction alike; a model trained with
    ``na_values: [n/a]`` keeps reading "n/a" as missing after it is saved and loaded."""
    import pandas as pd

    from modalfuse import MultimodalModel

    table = tmp_path / "t.csv"
    table.write_text("a,c,y\n" + "".join(f"{i % 3},{['NA', 'u', 'n/a'][i % 3]},{i % 2}\n" for i in range(12)))
    spec = {"name": "t", "kind": "tabular", "columns": ["a", "c"], "options": {"numeric": ["a"], "categorical": ["c"]}}
    model = MultimodalModel([spec], "y", train=TRAIN, na_values=["n/a"]).fit(table)
    assert model.preprocessors["t"].categories == [["NA", "u"]]
    model.save(tmp_path / "m")
    assert MultimodalModel.load(tmp_path / "m").na_values == ["n/a"]
    whole, chunked = tmp_path / "whole.csv", tmp_path / "chunked.csv"
    assert main(["predict", str(tmp_path / "m"), str(table), "-o", str(whole)]) == 0
    assert main(["predict", str(tmp_path / "m"), str(table), "-o", str(chunked), "--chunk-size", "5"]) == 0
    a, b = pd.read_csv(whole, keep_default_na=False), pd.read_csv(chunked, keep_default_na=False)
    assert len(a) == len(b) == 12
    pd.testing.assert_frame_equal(a, b, atol=1e-6)


@pytest.mark.parametrize("errno_code, words", [(28, "No space left on device"), (30, "Read-only file system")])
def test_full_or_read_only_run_folder_is_one_line(tmp_path, capsys, monkeypatch, errno_code, words):
    """The model cannot be written (disk full / read-only): exit 2, one line naming the file, no half-written model."""
    import modalfuse.core.storage as storage

    cfg = _table(tmp_path, rows=40)
    cfg.write_text(cfg.read_text().replace("max_epochs: 100000", "max_epochs: 1"))
    real = storage._atomic_write

    def full(path, data):
        if "model" in Path(path).parts:
            raise OSError(errno_code, os.strerror(errno_code), str(path))
        return real(path, data)

    monkeypatch.setattr(storage, "_atomic_write", full)
    code = main(["train", str(cfg), "--run-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and words in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if "error" in line]) == 1, err
    assert not glob.glob(str(tmp_path / "runs/*/model/manifest.json"))  # no model folder that would pass as complete


def test_unwritable_cache_is_one_line_naming_the_key(tmp_path, capsys, monkeypatch):
    import modalfuse.data.cache as cache

    (tmp_path / "img.png").write_bytes(_png())
    (tmp_path / "train.csv").write_text("i,y\nimg.png,0\nimg.png,1\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{train: train.csv, target: y, cache_dir: {tmp_path / 'cache'}}}\n"
                   "modalities: [{name: i, kind: image, options: {size: [8, 8]}}]\ntrain: {max_epochs: 1, progress: false, val_fraction: 0}\n")

    def read_only(self, *args):
        raise OSError(30, os.strerror(30), str(self.folder))

    monkeypatch.setattr(cache.FeatureCache, "_save", read_only)
    assert main(["train", str(cfg), "--run-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "data.cache_dir" in err and "Read-only file system" in err and "cache_dir: none" in err and "Traceback" not in err


def test_run_folder_that_cannot_be_created_is_one_line(tmp_path, capsys):
    """A --run-dir below a file (not a folder) cannot be created, whoever runs the test (root ignores chmod)."""
    cfg = _table(tmp_path, rows=40)
    (tmp_path / "blocker").write_text("a file")
    assert main(["train", str(cfg), "--run-dir", str(tmp_path / "blocker" / "runs")]) == 2
    err = capsys.readouterr().err
    assert "run_dir" in err and "blocker" in err and "Traceback" not in err
