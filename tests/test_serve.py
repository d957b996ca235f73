"""Serving: bundles (checksums, safe archives), the HTTP server (every error code, micro-batching,
missing modalities, API key), the client against the OpenAPI document, ONNX parity, a real uvicorn."""
from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from modalfuse import MultimodalModel  # noqa: E402
from modalfuse.client import Client  # noqa: E402
from modalfuse.serve import BundleError, export_bundle, load_bundle  # noqa: E402
from modalfuse.serve.app import ServeSettings, create_app  # noqa: E402

TRAIN = {"max_epochs": 2, "batch_size": 8, "lr": 3e-3, "patience": 0, "seed": 0, "progress": False, "val_fraction": 0.0, "threads": 1}
VEC_DIM = 4
MODS = ("image", "audio", "tabular", "text", "vec")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from conftest import build_table

    folder = tmp_path_factory.mktemp("serve")
    csv, frame = build_table(folder, n=24, seed=3)
    rng = np.random.default_rng(0)
    frame = frame.copy()
    frame["image"] = [str(folder / p) for p in frame["image"]]
    frame["audio"] = [str(folder / p) for p in frame["audio"]]
    frame["vec"] = [rng.normal(float(i % 2), 1.0, VEC_DIM).astype(np.float32) for i in range(len(frame))]
    return folder, frame


@pytest.fixture(scope="module")
def model(data):
    from conftest import modality_specs

    _, frame = data
    specs = modality_specs("image", "audio", "tabular", "text") + [
        {"name": "vec", "kind": "vector", "encoder": {"dim": 8, "options": {"hidden": [8], "dropout": 0.0}}}]
    return MultimodalModel(specs, "label", model={"fusion": {"name": "concat", "dim": 16}, "head_hidden": 0}, train=TRAIN).fit(frame)


@pytest.fixture(scope="module")
def bundle(model, data, tmp_path_factory):
    _, frame = data
    path = tmp_path_factory.mktemp("bundle") / "b"
    export_bundle(model, path, eval_data=frame.head(12), eval_name="first 12 training rows")
    return path


@pytest.fixture(scope="module")
def client(bundle):
    app = create_app(bundle, ServeSettings(max_wait_ms=2))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def b64(path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode()


def record(frame: pd.DataFrame, i: int, drop=()) -> dict:
    row = frame.iloc[i]
    rec = {
        "image": b64(row["image"]),
        "audio": b64(row["audio"]),
        "tabular": {"x1": float(row["x1"]), "x2": float(row["x2"]), "color": row["color"]},
        "text": row["text"],
        "vec": [float(x) for x in row["vec"]],
    }
    return {k: v for k, v in rec.items() if k not in drop}


def frame_without(frame: pd.DataFrame, drop=()) -> pd.DataFrame:
    f = frame.copy()
    columns = {"image": ["image"], "audio": ["audio"], "tabular": ["x1", "x2", "color"], "text": ["text"], "vec": ["vec"]}
    for m in drop:
        for c in columns[m]:
            f[c] = None
    return f


# ----------------------------------------------------------------------------- server basics
def test_health_metadata_and_openapi_cover_client_routes(client, model):
    assert client.get("/health").json()["status"] == "ok"
    meta = client.get("/metadata").json()
    assert set(meta["inputs"]) == set(MODS)
    assert meta["inputs"]["vec"]["length"] == VEC_DIM
    assert meta["inputs"]["tabular"]["categorical"]["color"] == ["blue", "green", "red"]
    assert meta["outputs"]["classes"] == ["cat", "dog"]
    card = meta["card"]
    assert card["versions"]["modalfuse"] and card["versions"]["torch"].startswith("2.")
    assert len(card["evaluation"]["by_modalities"]) == 2 ** len(MODS) - 1
    paths = client.get("/openapi.json").json()["paths"]
    for method, route in Client.ROUTES:
        assert route in paths and method in paths[route], (method, route)
    assert "requestBody" in paths["/predict"]["post"]


@pytest.mark.parametrize("drop", [(), ("audio",), ("image", "vec"), ("tabular", "text", "audio", "image")])
def test_prediction_matches_predict_frame_with_missing_modalities(client, model, data, drop):
    _, frame = data
    expected = model.predict_frame(frame_without(frame.head(4), drop))
    body = {"records": [record(frame, i, drop) for i in range(4)]}
    r = client.post("/predict", json=body)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    for i, res in enumerate(results):
        assert res["prediction"] == expected["prediction"].iloc[i]
        got = [res["probabilities"][c] for c in ("cat", "dog")]
        assert np.allclose(got, expected[["proba_cat", "proba_dog"]].iloc[i].to_numpy(), atol=1e-6)
        assert res["modalities_used"] == [m for m in MODS if m not in drop]


def test_single_record_and_multipart_upload(client, data):
    _, frame = data
    one = client.post("/predict", json=record(frame, 5)).json()["results"][0]
    row = frame.iloc[5]
    files = {"image": ("x.png", Path(row["image"]).read_bytes(), "image/png"),
             "audio": ("x.wav", Path(row["audio"]).read_bytes(), "audio/wav")}
    form = {"tabular": json.dumps({"x1": float(row["x1"]), "x2": float(row["x2"]), "color": row["color"]}),
            "text": row["text"], "vec": json.dumps([float(x) for x in row["vec"]])}
    r = client.post("/predict", files=files, data=form)
    assert r.status_code == 200, r.text
    multi = r.json()["results"][0]
    assert multi["prediction"] == one["prediction"]
    assert np.allclose(list(multi["probabilities"].values()), list(one["probabilities"].values()), atol=1e-6)


def test_embed(client, data, model):
    _, frame = data
    r = client.post("/embed", json={"records": [record(frame, 0, drop=("audio",))]})
    assert r.status_code == 200, r.text
    res = r.json()["results"][0]
    assert res["modalities"]["audio"] is None
    assert len(res["modalities"]["vec"]) == 8 and len(res["fused"]) == 16


def test_metrics_prometheus(client):
    client.post("/predict", json={"vec": [0.0] * VEC_DIM})
    client.post("/predict", json={"vec": []})
    text = client.get("/metrics").text
    assert 'modalfuse_requests_total{endpoint="/predict",status="200"}' in text
    assert 'modalfuse_requests_total{endpoint="/predict",status="422"}' in text
    assert "modalfuse_request_latency_seconds_bucket" in text and "modalfuse_batch_size_records_count" in text


# ----------------------------------------------------------------------------- errors
def _bad_wav(path) -> str:
    raw = Path(path).read_bytes()
    return base64.b64encode(raw[: len(raw) // 2]).decode()


@pytest.mark.parametrize("patch, field, words", [
    ({"vec": [1.0, 2.0]}, "records[0].vec", "length"),
    ({"vec": [1.0, "a", 2.0, 3.0]}, "records[0].vec[1]", "number"),
    ({"vec": [1.0, 2.0, True, 3.0]}, "records[0].vec[2]", "number"),
    ({"vec": []}, "records[0].vec", "empty"),
    ({"vec": [10**400, 0, 0, 0]}, "records[0].vec[0]", "finite"),
    ({"tabular": {"x1": 10**400}}, "records[0].tabular.x1", "finite"),
    ({"vec": "1 2 3 4"}, "records[0].vec", "list"),
    ({"tabular": {"x1": 1.0, "x2": 2.0, "color": "purple"}}, "records[0].tabular.color", "unknown category"),
    ({"tabular": {"x1": "tall", "x2": 2.0}}, "records[0].tabular.x1", "number"),
    ({"tabular": {"height": 3}}, "records[0].tabular.height", "unknown column"),
    ({"image": base64.b64encode(b"not an image at all").decode()}, "records[0].image", "cannot decode image"),
    ({"image": "%%% not base64"}, "records[0].image", "base64"),
    ({"text": 12}, "records[0].text", "string"),
    ({"colour": "red"}, "records[0].colour", "unknown modality"),
])
def test_invalid_fields_are_422_naming_the_field(client, data, patch, field, words):
    _, frame = data
    rec = {**record(frame, 0), **patch}
    r = client.post("/predict", json={"records": [rec]})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["field"] == field and words in body["message"], body


def test_undecodable_audio_nan_invalid_json_and_empty_record(client, data):
    _, frame = data
    r = client.post("/predict", json={"audio": _bad_wav(frame["audio"].iloc[0])})
    assert r.status_code == 422 and r.json()["field"] == "records[0].audio" and "audio" in r.json()["message"]
    raw = '{"records": [{"vec": [1.0, NaN, 2.0, 3.0]}]}'
    r = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["field"] == "records[0].vec[1]" and "finite" in r.json()["message"]
    r = client.post("/predict", content="{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["field"] == "body" and "JSON" in r.json()["message"]
    r = client.post("/predict", json={"records": [{}]})
    assert r.status_code == 422 and "no modality" in r.json()["message"]
    r = client.post("/predict", json={"records": []})
    assert r.status_code == 422 and r.json()["field"] == "records"


@pytest.mark.parametrize("ctype, body", [
    ("multipart/form-data; boundary=xyz", b"--xyz\r\nContent-Disposition: form-data; name=\"vec\"\r\n\r\n[1, 2"),  # never closed
    ("multipart/form-data", b"--xyz\r\n\r\n"),  # no boundary
    ("multipart/form-data; boundary=xyz", b"garbage without any part"),
])
def test_malformed_multipart_is_422(client, ctype, body):
    r = client.post("/predict", content=body, headers={"content-type": ctype})
    assert r.status_code == 422, r.text
    assert r.json()["field"] in ("body", "vec", "records[0]"), r.json()


def test_payload_too_large_is_413(bundle):
    app = create_app(bundle, ServeSettings(max_body_mb=0.001))
    with TestClient(app) as c:
        r = c.post("/predict", json={"vec": [0.5] * 500})
        assert r.status_code == 413 and r.json()["error"] == "payload_too_large"

        def chunks():  # no content-length: counted while streaming
            yield b'{"vec": [' + b"0.5," * 400
            yield b"0.5]}"

        r = c.post("/predict", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413


def test_startup_freezes_long_lived_objects_out_of_the_gc(bundle):
    import gc

    gc.unfreeze()
    try:
        with TestClient(create_app(bundle)) as c:
            assert c.get("/health").status_code == 200
            assert gc.get_freeze_count() > 10_000  # torch, the model and the web stack
    finally:
        gc.unfreeze()


def test_timeout_is_504(model):
    app = create_app(model, ServeSettings(timeout_s=0.05))
    engine = app.state.engine
    slow = engine.predict

    def sleepy(enc):
        time.sleep(0.3)
        return slow(enc)

    engine.predict = sleepy
    with TestClient(app) as c:
        r = c.post("/predict", json={"vec": [0.0] * VEC_DIM})
        assert r.status_code == 504 and r.json()["error"] == "timeout"


def test_nan_output_and_crashes_give_json_errors_without_traceback(bundle):
    loaded = load_bundle(bundle).model
    app = create_app(loaded, ServeSettings())
    with TestClient(app, raise_server_exceptions=False) as c:
        with torch.no_grad():
            for p in loaded.net.head.parameters():
                p.fill_(float("nan"))
        r = c.post("/predict", json={"vec": [0.0] * VEC_DIM})
        assert r.status_code == 422 and r.json()["error"] == "non_finite_output"
        app.state.engine.predict = lambda enc: 1 / 0
        r = c.post("/predict", json={"vec": [0.0] * VEC_DIM})
        assert r.status_code == 500 and r.json() == {"error": "internal_error", "message": "the server failed to handle this request"}
        assert "Traceback" not in r.text and "ZeroDivision" not in r.text
    with pytest.raises(BundleError, match="NaN"):
        create_app(loaded)  # refuses to start on NaN weights


def test_api_key(bundle):
    app = create_app(bundle, ServeSettings(api_key="s3cret-key"))
    with TestClient(app) as c:
        assert c.get("/health").status_code == 200
        assert c.post("/predict", json={"vec": [0.0] * VEC_DIM}).status_code == 401
        bad = {"Authorization": "Bearer wrong"}
        assert c.post("/predict", json={"vec": [0.0] * VEC_DIM}, headers=bad).status_code == 401
        assert c.get("/metadata", headers=bad).status_code == 401
        good = {"Authorization": "Bearer s3cret-key"}
        assert c.post("/predict", json={"vec": [0.0] * VEC_DIM}, headers=good).status_code == 200


def test_micro_batching_groups_concurrent_requests(model, data):
    import httpx

    _, frame = data
    app = create_app(model, ServeSettings(max_batch=64, max_wait_ms=50))

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            rs = await asyncio.gather(*[c.post("/predict", json={"vec": [float(x) for x in frame["vec"].iloc[i]]}) for i in range(12)])
            await app.state.batcher.stop()
            return rs

    responses = asyncio.run(go())
    assert all(r.status_code == 200 for r in responses)
    hist = app.state.metrics.batch_rows
    assert hist.total < 12 and hist.sum == 12  # fewer forward passes than requests
    expected = model.predict_frame(frame_without(frame.head(12), ("image", "audio", "tabular", "text")))
    assert [r.json()["results"][0]["prediction"] for r in responses] == list(expected["prediction"])


# ----------------------------------------------------------------------------- bundles
def test_bundle_round_trip_and_tampering(bundle, model, data, tmp_path):
    _, frame = data
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert set(manifest["files"]) == {"model.json", "train.json", "preprocessors.json", "weights.safetensors", "meta.json", "card.json"}
    archive = export_bundle(model, tmp_path / "b.tar.gz")
    loaded = load_bundle(archive).model
    assert np.array_equal(loaded.predict_proba(frame.head(5)), model.predict_proba(frame.head(5)))
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    weights = bytearray((copy / "weights.safetensors").read_bytes())
    weights[-1] ^= 0xFF
    (copy / "weights.safetensors").write_bytes(bytes(weights))
    with pytest.raises(BundleError, match="weights.safetensors was modified"):
        load_bundle(copy)
    (copy / "weights.safetensors").write_bytes((bundle / "weights.safetensors").read_bytes())
    load_bundle(copy)
    (copy / "extra.py").write_text("print('hi')")
    with pytest.raises(BundleError, match="not in its manifest"):
        load_bundle(copy)


@pytest.mark.parametrize("name", ["../evil.json", "/tmp/abs.json", "sub/../../x.json"])
def test_archive_path_traversal_is_refused(bundle, tmp_path, name):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for p in sorted(bundle.iterdir()):
            tar.add(p, arcname=p.name)
        info = tarfile.TarInfo(name)
        payload = b"{}"
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(BundleError, match="absolute path|escapes|path traversal"):
        load_bundle(archive)
    assert not (tmp_path.parent / "evil.json").exists()


def test_onnx_parity(model, data, tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from conftest import modality_specs
    from modalfuse.serve.onnx import OnnxExportError, export_onnx

    _, frame = data
    with pytest.raises(OnnxExportError, match="audio"):
        export_onnx(model, tmp_path / "full.onnx")
    specs = modality_specs("image", "tabular", "text") + [{"name": "vec", "kind": "vector", "encoder": {"dim": 8, "options": {"hidden": [8]}}}]
    small = MultimodalModel(specs, "label", model={"fusion": {"name": "concat", "dim": 16}}, train=TRAIN).fit(frame)
    info = export_onnx(small, tmp_path / "small.onnx")
    assert info["parity"]["max_abs_diff"] < 1e-4
    session = ort.InferenceSession(str(tmp_path / "small.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image", "image_mask", "tabular", "tabular_mask", "text", "text_mask", "vec", "vec_mask"]
    # dynamic batch axis: 7 rows, one modality missing in some
    from modalfuse.serve.onnx import example_inputs

    tensors = example_inputs(small, n=7, seed=3)
    feeds = {name: t.numpy() for name, t in zip([i.name for i in session.get_inputs()], tensors)}
    proba = session.run(["proba"], feeds)[0]
    assert proba.shape == (7, 2) and np.allclose(proba.sum(1), 1, atol=1e-5)


# ----------------------------------------------------------------------------- property test
def test_request_parser_never_500(client):
    from hypothesis import HealthCheck, given, settings, strategies as st

    leaf = st.none() | st.booleans() | st.integers(-10**400, 10**400) | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8)
    json_value = st.recursive(leaf, lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=6), kids, max_size=4), max_leaves=12)
    key = st.sampled_from(list(MODS) + ["records", "x1", "other"])
    vec = st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10**40, 10**40), min_size=0, max_size=6)
    rec = st.dictionaries(key, json_value | vec | st.fixed_dictionaries({"x1": json_value, "color": json_value}), max_size=4)
    body = rec | st.fixed_dictionaries({"records": st.lists(rec, max_size=3) | json_value}) | json_value

    @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body)
    def check(payload):
        raw = json.dumps(payload, allow_nan=True)
        r = client.post("/predict", content=raw, headers={"content-type": "application/json"})
        assert r.status_code in (200, 422), (r.status_code, r.text, raw)
        assert isinstance(r.json(), dict)

    check()


# ----------------------------------------------------------------------------- a real server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_real_uvicorn_process(bundle, data, tmp_path):
    _, frame = data
    port = _free_port()
    key_file = tmp_path / "key"
    key_file.write_text("k3y\n")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "modalfuse.cli", "serve", str(bundle), "--host", "127.0.0.1", "--port", str(port),
                             "--api-key-file", str(key_file)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        client = Client(f"http://127.0.0.1:{port}", api_key="k3y", timeout=10)
        deadline = time.monotonic() + 45
        while True:
            try:
                assert client.health()["status"] == "ok"
                break
            except Exception:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"server did not start: {proc.stdout.read().decode() if proc.poll() is not None else 'timeout'}")
                time.sleep(0.25)
        assert set(client.metadata()["inputs"]) == set(MODS)
        results = client.predict([record(frame, 0), record(frame, 1, drop=("image",))])
        assert len(results) == 2 and results[1]["modalities_used"] == ["audio", "tabular", "text", "vec"]
        assert len(client.embed(record(frame, 2))[0]["fused"]) == 16
        from modalfuse.client import ServerError

        with pytest.raises(ServerError) as err:
            Client(f"http://127.0.0.1:{port}").predict({"vec": [0.0] * VEC_DIM})
        assert err.value.status == 401
        client.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_ensemble_served_like_predict_frame(data):
    _, frame = data
    spec = [{"name": "vec", "kind": "vector", "encoder": {"dim": 8, "options": {"hidden": [8]}}},
            {"name": "tabular", "kind": "tabular", "columns": ["x1", "x2", "color"], "options": {"numeric": ["x1", "x2"], "categorical": ["color"]}}]
    ens = MultimodalModel(spec, "label", train={**TRAIN, "ensemble": 2}).fit(frame)
    expected = ens.predict_frame(frame_without(frame.head(3), ("tabular",)))
    with TestClient(create_app(ens)) as c:
        r = c.post("/predict", json={"records": [record(frame, i, drop=("image", "audio", "text", "tabular")) for i in range(3)]})
    assert r.status_code == 200, r.text
    for i, res in enumerate(r.json()["results"]):
        assert np.isclose(res["probabilities"]["dog"], expected["proba_dog"].iloc[i], atol=1e-6)
        assert np.isclose(res["uncertainty"]["epistemic"], expected["uncertainty_epistemic"].iloc[i], atol=1e-6)
