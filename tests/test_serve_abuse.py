"""Hostile requests to the server: limits checked before work (records, decoded pixels), timed-out work
dropped, slow clients cut off, malformed multipart JSON, error shapes for 404/405, the OpenAPI document
agreeing with the server (security, record schema), keys guarding /docs, newer bundles refused."""
from __future__ import annotations

import asyncio
import base64
import io
import json
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from modalfuse import MultimodalModel  # noqa: E402
from modalfuse.errors import ConfigError  # noqa: E402
from modalfuse.serve import BundleError, export_bundle, load_bundle  # noqa: E402
from modalfuse.serve.app import create_app  # noqa: E402
from modalfuse.serve.limits import ServeSettings  # noqa: E402

TRAIN = {"max_epochs": 1, "batch_size": 8, "lr": 3e-3, "patience": 0, "seed": 0, "progress": False, "val_fraction": 0.0, "threads": 1}


@pytest.fixture(scope="module")
def plain_model():
    """vector + text + tabular: every value JSON Schema can state exactly."""
    rng = np.random.default_rng(0)
    n = 24
    frame = pd.DataFrame({
        "vec": [rng.normal(i % 2, 1.0, 3).astype(np.float32) for i in range(n)],
        "text": [("good fine" if i % 2 else "bad poor") + f" w{i}" for i in range(n)],
        "x1": rng.normal(size=n), "color": [["red", "blue", "7"][i % 3] for i in range(n)],
        "label": ["a" if i % 2 else "b" for i in range(n)],
    })
    specs = [{"name": "vec", "kind": "vector", "encoder": {"dim": 4}},
             {"name": "text", "kind": "text", "encoder": {"dim": 4}},
             {"name": "tab", "kind": "tabular", "columns": ["x1", "color"], "options": {"numeric": ["x1"], "categorical": ["color"]},
              "encoder": {"dim": 4}}]
    return MultimodalModel(specs, "label", model={"fusion": {"name": "concat", "dim": 8}, "head_hidden": 0}, train=TRAIN).fit(frame)


@pytest.fixture(scope="module")
def image_model(tmp_path_factory):
    rng = np.random.default_rng(1)
    folder = tmp_path_factory.mktemp("imgs")
    rows = []
    for i in range(16):
        path = folder / f"{i}.png"
        Image.fromarray((rng.random((8, 8)) * 255 * (0.5 + 0.5 * (i % 2))).astype(np.uint8)).save(path)
        rows.append({"image": str(path), "x": float(i % 2), "label": i % 2})
    specs = [{"name": "image", "kind": "image", "options": {"size": [8, 8]}, "encoder": {"dim": 4}},
             {"name": "x", "kind": "vector", "columns": ["x"], "encoder": {"dim": 4}}]
    return MultimodalModel(specs, "label", model={"fusion": {"name": "concat", "dim": 8}, "head_hidden": 0},
                           task="classification", train=TRAIN).fit(pd.DataFrame(rows))


def png(width: int, height: int) -> str:
    buf = io.BytesIO()
    Image.new("L", (width, height), 128).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def good(i: int = 0) -> dict:
    return {"vec": [0.1 * i, 0.2, 0.3], "text": "good fine", "tab": {"x1": 0.5, "color": "red"}}


# ----------------------------------------------------------------------------- limits before work
def test_record_count_is_bounded_before_any_work(plain_model):
    with TestClient(create_app(plain_model, ServeSettings(max_records=10))) as c:
        assert c.post("/predict", json={"records": [good()] * 10}).status_code == 200
        r = c.post("/predict", json={"records": [{"text": "x"}] * 40_000})
        assert r.status_code == 422 and r.json()["field"] == "records" and "limit is 10" in r.json()["message"]


def test_pixel_bomb_is_refused_from_its_header(image_model):
    app = create_app(image_model, ServeSettings(max_decoded_mb=1.0))  # 262,144 values
    calls = []
    pre = app.state.engine.preprocessors["image"]
    real = pre._decode
    pre._decode = lambda *a: calls.append(1) or real(*a)
    with TestClient(app) as c:
        assert c.post("/predict", json={"image": png(400, 400)}).status_code == 200  # 160,000 values
        r = c.post("/predict", json={"image": png(12000, 12000)})  # a 140 KB file of 144 M pixels
        assert r.status_code == 413 and r.json()["field"] == "records[0].image" and "decode to more than 1 MB" in r.json()["message"]
        # the budget is per request: two allowed images together cross it
        r = c.post("/predict", json={"records": [{"image": png(400, 400)}, {"image": png(400, 400)}]})
        assert r.status_code == 413 and r.json()["field"] == "records[1].image"
    assert len(calls) == 1  # only the allowed image was ever decoded


def test_health_answers_while_large_images_decode(image_model):
    """Decoding above OFFLOAD_VALUES runs in worker threads: /health is not held up behind it."""
    app = create_app(image_model, ServeSettings(max_decoded_mb=64.0))
    pre = app.state.engine.preprocessors["image"]
    real = pre._decode

    def slow(*args):
        time.sleep(0.5)  # stands for a costly decode
        return real(*args)

    pre._decode = slow
    big = png(1200, 1000)

    async def scenario():
        import httpx

        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            heavy = [asyncio.create_task(c.post("/predict", json={"image": big})) for _ in range(3)]
            await asyncio.sleep(0.05)
            waits = []
            for _ in range(5):
                t = time.perf_counter()
                assert (await c.get("/health")).status_code == 200
                waits.append(time.perf_counter() - t)
            statuses = [(await h).status_code for h in heavy]
            return waits, statuses

    waits, statuses = asyncio.run(scenario())
    assert statuses == [200, 200, 200]
    assert max(waits) < 0.25, waits


def test_timed_out_request_does_not_delay_the_next(plain_model):
    """1,000 records with max_batch 1 run as 1,000 chunks of 5 ms: after the 504 the chunks stop, the next request is quick."""
    app = create_app(plain_model, ServeSettings(max_batch=1, timeout_s=0.5, max_wait_ms=0))
    engine = app.state.engine
    real = engine.predict
    ran = []

    def slow(enc):
        time.sleep(0.005)
        ran.append(len(enc))
        return real(enc)

    engine.predict = slow
    with TestClient(app) as c:
        t = time.perf_counter()
        r = c.post("/predict", json={"records": [good(i) for i in range(1000)]})
        assert r.status_code == 504 and r.json()["error"] == "timeout"
        assert time.perf_counter() - t < 1.5
        t = time.perf_counter()
        assert c.post("/predict", json=good()).status_code == 200
        assert time.perf_counter() - t < 0.3
    assert sum(ran) < 400  # the timed-out request's remaining chunks were dropped


# ----------------------------------------------------------------------------- malformed bodies and routes
def test_deeply_nested_json_in_a_multipart_part_is_422(plain_model):
    with TestClient(create_app(plain_model)) as c:
        deep = "[" * 100_000 + "]" * 100_000
        r = c.post("/predict", files={"tab": (None, deep)})
        assert r.status_code == 422 and r.json()["field"] == "tab" and "nested too deeply" in r.json()["message"]
        r = c.post("/predict", content=deep, headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.json()["field"] == "body"


def test_404_and_405_use_the_error_shape(plain_model):
    with TestClient(create_app(plain_model)) as c:
        r = c.get("/nope")
        assert r.status_code == 404 and r.json()["error"] == "not_found" and "/nope" in r.json()["message"]
        r = c.get("/predict")
        assert r.status_code == 405 and r.json()["error"] == "method_not_allowed" and "POST" in r.headers["allow"]


def test_openapi_agrees_with_the_server(plain_model):
    with TestClient(create_app(plain_model, ServeSettings(max_records=7))) as c:
        doc = c.get("/openapi.json").json()
        predict = doc["paths"]["/predict"]["post"]
        assert "security" not in predict and "401" not in predict["responses"]  # no key: no Authorization required
        assert {"413", "422", "504"} <= set(predict["responses"])
        body = predict["requestBody"]["content"]["application/json"]["schema"]["anyOf"][0]
        assert body["properties"]["records"]["minItems"] == 1 and body["properties"]["records"]["maxItems"] == 7
        record = doc["components"]["schemas"]["Record"]
        assert set(record["properties"]) == {"vec", "text", "tab"} and record["additionalProperties"] is False
        assert record["x-exact"] is True and "multipart/form-data" not in predict["requestBody"]["content"]
        vec = record["properties"]["vec"]["anyOf"][0]
        assert vec["minItems"] == vec["maxItems"] == 3
        color = record["properties"]["tab"]["anyOf"][0]["properties"]["color"]["anyOf"][0]
        assert sorted(map(str, color["enum"])) == ["7", "7", "blue", "red"]  # "7" may come as the number 7
        # what the schema states, the server does: the number 7 is the category "7", an unknown category is 422
        assert c.post("/predict", json={"tab": {"x1": 1.0, "color": 7}}).status_code == 200
        assert c.post("/predict", json={"tab": {"x1": 1.0, "color": "green"}}).status_code == 422
        assert c.post("/predict", json={"records": []}).status_code == 422
        assert c.post("/predict", json={"vec": [1e31, 0, 0]}).status_code == 422  # past the stated maximum
        assert c.post("/predict", json={"text": "   ", "vec": [0, 0, 0]}).json()["results"][0]["modalities_used"] == ["vec"]
        assert c.post("/predict", json={"text": "   "}).status_code == 422  # blank text is missing: nothing present


def test_a_key_guards_docs_and_openapi_and_is_declared(plain_model):
    with TestClient(create_app(plain_model, ServeSettings(api_key="s3cret"))) as c:
        for route in ("/openapi.json", "/docs", "/metadata", "/metrics"):
            r = c.get(route)
            assert r.status_code == 401 and r.json()["error"] == "unauthorized", route
        auth = {"Authorization": "Bearer s3cret"}
        assert c.get("/health").status_code == 200
        doc = c.get("/openapi.json", headers=auth).json()
        assert doc["paths"]["/predict"]["post"]["security"] and "401" in doc["paths"]["/predict"]["post"]["responses"]
        assert "security" not in doc["paths"]["/health"]["get"]
        assert c.get("/docs", headers=auth).status_code == 200


# ----------------------------------------------------------------------------- slow clients, CLI ranges, newer bundles
def test_slow_and_silent_clients_are_cut_off(plain_model, tmp_path):
    bundle = export_bundle(plain_model, tmp_path / "b")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "modalfuse.cli", "serve", str(bundle), "--port", str(port), "--read-timeout-s", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode() if proc.poll() is not None else "timeout"
                time.sleep(0.2)
        silent = socket.create_connection(("127.0.0.1", port))
        trickle = socket.create_connection(("127.0.0.1", port))
        start = time.monotonic()
        closed = {}
        for sock in (silent, trickle):
            sock.settimeout(0.2)
        while len(closed) < 2 and time.monotonic() - start < 6:
            for name, sock in (("silent", silent), ("trickle", trickle)):
                if name in closed:
                    continue
                try:
                    if name == "trickle":
                        sock.send(b"G")  # one byte of headers every 0.2 s, never a whole request
                    if sock.recv(1) == b"":
                        closed[name] = time.monotonic() - start
                except socket.timeout:
                    pass
                except OSError:
                    closed[name] = time.monotonic() - start
        assert set(closed) == {"silent", "trickle"}, closed
        assert all(0.8 < t < 3 for t in closed.values()), closed
        with socket.create_connection(("127.0.0.1", port), timeout=5) as ok:  # a whole request is still answered
            ok.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert ok.recv(64).startswith(b"HTTP/1.1 200")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("args, words", [(["--port", "70000"], "1 to 65535"), (["--port", "0"], "above 0"),
                                         (["--timeout-s", "-1"], "above 0"), (["--max-records", "0"], "above 0")])
def test_serve_cli_ranges(args, words, capsys):
    from modalfuse.cli import main

    with pytest.raises(SystemExit) as err:
        main(["serve", "bundle", *args])
    assert err.value.code == 2 and words in capsys.readouterr().err


def test_settings_are_validated():
    with pytest.raises(ConfigError, match="max_wait_ms"):
        ServeSettings(max_wait_ms=-1)
    with pytest.raises(ConfigError, match="max_records"):
        ServeSettings(max_records=0)


def test_newer_bundles_are_refused_or_flagged(plain_model, tmp_path):
    from modalfuse.core.storage import write_manifest

    def variant(name, **card_changes):
        path = export_bundle(plain_model, tmp_path / name)
        card = json.loads((path / "card.json").read_text())
        for key, value in card_changes.items():
            if key == "modalfuse":
                card["versions"]["modalfuse"] = value
            else:
                card[key] = value
        (path / "card.json").write_text(json.dumps(card))
        (path / "manifest.json").unlink()
        write_manifest(path)
        return path

    with pytest.raises(BundleError, match="card format 2 is newer"):
        load_bundle(variant("fmt", format=2))
    with pytest.raises(BundleError, match="newer than this"):
        load_bundle(variant("major", modalfuse="9.0.0"))
    with pytest.warns(UserWarning, match="may use features"):
        load_bundle(variant("patch", modalfuse="0.1.7"))


def test_multipart_parser_never_500(image_model):
    """Hypothesis over multipart bodies: any part names, JSON-ish or binary contents, file or field: never a 500."""
    from hypothesis import HealthCheck, given, settings, strategies as st

    names = st.sampled_from(["image", "x", "other", "records", ""])
    text = st.text(max_size=30) | st.sampled_from(["[1]", "[1e400]", "[" * 3000, '{"a": 1}', "null", "[true]"])
    content = st.binary(max_size=64) | st.just(base64.b64decode(png(4, 4)))
    part = st.tuples(names, st.booleans(), text, content)

    with TestClient(create_app(image_model, ServeSettings(max_wait_ms=1)), raise_server_exceptions=False) as c:
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(st.lists(part, min_size=1, max_size=4))
        def check(parts):
            files = [(name, (f"{name}.bin", data) if as_file else (None, value)) for name, as_file, value, data in parts]
            r = c.post("/predict", files=files)
            assert r.status_code in (200, 413, 422), (r.status_code, r.text)
            assert set(r.json()) >= ({"results"} if r.status_code == 200 else {"error", "message"})

        check()
