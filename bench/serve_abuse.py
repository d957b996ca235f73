"""Abuse test of `modalfuse serve`: what hostile requests cost a real server process (issue 15, class 6).

    .venv/bin/python bench/serve_abuse.py                 # ~4 minutes on 2 cores; writes docs/results/serve_abuse.md

Trains two small models on synthetic data (vector + text + tabular: every value JSON Schema can state;
image + audio + vector: file uploads), exports bundles and serves each with `modalfuse serve` on
127.0.0.1. Measured: the server's peak RSS (VmHWM) for the largest allowed requests; /health latency
while pixel bombs and the largest allowed images are in flight; a timed-out request against the next
one; 40,000 tiny records; slow and silent sockets; schemathesis `--checks all` with and without a key.
Figures are printed last. Servers are always terminated.
"""
from __future__ import annotations

import base64
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "results" / "serve_abuse.md"
TRAIN = {"max_epochs": 2, "batch_size": 8, "lr": 3e-3, "patience": 0, "seed": 0, "progress": False, "val_fraction": 0.0, "threads": 1}


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png(width: int, height: int, mode: str = "L", noise: bool = False) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(0)
    if noise:
        img = Image.fromarray(rng.integers(0, 255, (height, width), dtype=np.uint8))
    else:
        img = Image.new(mode, (width, height), 128 if mode == "L" else (120, 30, 200))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def wav(seconds: float, rate: int = 8000) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    t = np.arange(int(seconds * rate)) / rate
    sf.write(buf, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate, format="WAV")
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def train_bundles(folder: Path) -> tuple[Path, Path]:
    import pandas as pd
    from PIL import Image

    from modalfuse import MultimodalModel
    from modalfuse.serve import export_bundle

    rng = np.random.default_rng(0)
    n = 48
    plain = pd.DataFrame({
        "vec": [rng.normal(i % 2, 1.0, 16).astype(np.float32) for i in range(n)],
        "text": [("good fine great" if i % 2 else "bad poor awful") + f" w{i}" for i in range(n)],
        "x1": rng.normal(size=n), "color": [["red", "blue", "green"][i % 3] for i in range(n)],
        "label": ["pos" if i % 2 else "neg" for i in range(n)]})
    specs = [{"name": "vec", "kind": "vector", "encoder": {"dim": 16}},
             {"name": "text", "kind": "text", "encoder": {"dim": 16}},
             {"name": "tab", "kind": "tabular", "columns": ["x1", "color"], "options": {"numeric": ["x1"], "categorical": ["color"]},
              "encoder": {"dim": 16}}]
    model = MultimodalModel(specs, "label", model={"fusion": {"name": "concat", "dim": 32}}, train=TRAIN).fit(plain)
    plain_bundle = export_bundle(model, folder / "plain")

    rows = []
    for i in range(n):
        img, snd = folder / f"img{i}.png", folder / f"snd{i}.wav"
        Image.fromarray((rng.random((32, 32)) * 255 * (0.4 + 0.6 * (i % 2))).astype(np.uint8)).save(img)
        snd.write_bytes(wav(0.5 + 0.5 * (i % 2)))
        rows.append({"image": str(img), "audio": str(snd), "vec": rng.normal(i % 2, 1.0, 4).astype(np.float32), "label": i % 2})
    specs = [{"name": "image", "kind": "image", "options": {"size": [32, 32]}, "encoder": {"dim": 16}},
             {"name": "audio", "kind": "audio", "options": {"sample_rate": 8000, "max_seconds": 1.0}, "encoder": {"dim": 16}},
             {"name": "vec", "kind": "vector", "encoder": {"dim": 16}}]
    model = MultimodalModel(specs, "label", model={"fusion": {"name": "concat", "dim": 32}}, task="classification", train=TRAIN).fit(pd.DataFrame(rows))
    return plain_bundle, export_bundle(model, folder / "media")


class Server:
    def __init__(self, bundle: Path, *flags: str) -> None:
        self.port = free_port()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "modalfuse.cli", "serve", str(bundle), "--port", str(self.port), *flags],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 90
        while True:
            try:
                if self.get("/health", headers={})[0] == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {self.proc.stdout.read().decode() if self.proc.poll() is not None else 'timeout'}")
            time.sleep(0.3)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str, headers: dict | None = None, timeout: float = 30) -> tuple[int, bytes]:
        return self.request(path, None, headers or {}, timeout)

    def post(self, path: str, body: dict | bytes, timeout: float = 60) -> tuple[int, bytes]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.request(path, data, {"content-type": "application/json"}, timeout)

    def request(self, path: str, data, headers: dict, timeout: float) -> tuple[int, bytes]:
        req = urllib.request.Request(self.url(path), data=data, headers=headers, method="POST" if data is not None else "GET")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def hwm_mib(self) -> float:
        return status_kib(self.proc.pid, "VmHWM") / 1024

    def rss_mib(self) -> float:
        return status_kib(self.proc.pid, "VmRSS") / 1024

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def health_while(server: Server, body: dict, seconds: float, senders: int = 3) -> dict:
    """/health latencies (every 20 ms) while ``senders`` threads post ``body`` back to back."""
    stop = threading.Event()
    statuses: list[int] = []

    def send():
        while not stop.is_set():
            statuses.append(server.post("/predict", body, timeout=120)[0])

    threads = [threading.Thread(target=send, daemon=True) for _ in range(senders)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    waits = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        server.get("/health")
        waits.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.02)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    waits.sort()
    return {"p50_ms": statistics.median(waits), "p99_ms": waits[int(0.99 * (len(waits) - 1))], "max_ms": waits[-1],
            "health_n": len(waits), "requests": len(statuses), "statuses": sorted(set(statuses))}


def slowloris(server: Server, sockets: int, seconds: float) -> dict:
    """``sockets`` connections: half silent, half sending one header byte every 0.5 s; when does the server close them?"""
    conns = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(sockets)]
    for c in conns:
        c.setblocking(False)
    start, closed, waits, sent = time.monotonic(), {}, [], {}
    while time.monotonic() - start < seconds and len(closed) < sockets:
        for i, c in enumerate(conns):
            if i in closed:
                continue
            try:
                tick = int((time.monotonic() - start) * 2)
                if i % 2 and tick > sent.get(i, -1):
                    c.send(b"X")
                    sent[i] = tick
                if c.recv(1) == b"":
                    closed[i] = time.monotonic() - start
            except BlockingIOError:
                pass
            except OSError:
                closed[i] = time.monotonic() - start
        t0 = time.perf_counter()
        server.get("/health")
        waits.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.05)
    for c in conns:
        c.close()
    times = sorted(closed.values())
    waits.sort()
    return {"closed": len(closed), "of": sockets, "first_s": times[0] if times else None, "last_s": times[-1] if times else None,
            "health_p99_ms": waits[int(0.99 * (len(waits) - 1))]}


def schemathesis(server: Server, key: str | None, exclude: str | None = None, examples: int = 100) -> str:
    st = Path(sys.executable).parent / "st"
    if not st.exists():
        return "schemathesis not installed (pip install schemathesis)"
    cmd = [str(st), "run", server.url("/openapi.json"), "--checks", "all", "--max-examples", str(examples), "--wait-for-schema", "30",
           "--seed", "1"]
    if exclude:
        cmd += ["--exclude-checks", exclude]
    if key:
        cmd += ["-H", f"Authorization: Bearer {key}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900).stdout
    summary = [ln.strip() for ln in out.splitlines() if "generated" in ln or "No issues" in ln or "failure" in ln.lower() and "=" in ln]
    return "; ".join(summary[-2:]) or out[-300:]


def main() -> None:
    from modalfuse.evaluate.benchmark import library_versions, load_average, machine_info

    load_start = load_average()
    rows: list[tuple[str, str, str]] = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="modalfuse-abuse-") as tmp:
        plain, media = train_bundles(Path(tmp))
        key = Path(tmp) / "key"
        key.write_text("s3cret")

        # ---------------------------------------------------------------- media server, default limits
        s = Server(media)
        try:
            small = {"image": b64(png(32, 32)), "audio": b64(wav(1.0)), "vec": [0.0] * 4}
            assert s.post("/predict", small)[0] == 200
            base = s.hwm_mib()
            rows.append(("media server, idle after one request", f"RSS {s.rss_mib():.0f} MiB, peak {base:.0f} MiB", "baseline"))
            side = 8000  # 64.0 M values: the largest grey image under the default 256 MB decoded budget
            t0 = time.perf_counter()
            code, _ = s.post("/predict", {"image": b64(png(side, side)), "vec": [0.0] * 4})
            rows.append((f"largest allowed image ({side}×{side} grey PNG, {len(png(side, side)) // 1024} KB)",
                         f"{code} in {time.perf_counter() - t0:.2f} s; peak RSS {s.hwm_mib():.0f} MiB (+{s.hwm_mib() - base:.0f})", "< 1,024 MiB"))
            rgb = 4600
            code, _ = s.post("/predict", {"image": b64(png(rgb, rgb, "RGB")), "vec": [0.0] * 4})
            rows.append((f"largest allowed colour image ({rgb}×{rgb} RGB)", f"{code}; peak RSS {s.hwm_mib():.0f} MiB", "< 1,024 MiB"))
            code, _ = s.post("/predict", {"records": [{"audio": b64(wav(150.0))}, {"audio": b64(wav(20.0))}]})
            rows.append(("150 s + 20 s of audio at 8 kHz (1.4 M samples, 3.6 MB body)", f"{code}; peak RSS {s.hwm_mib():.0f} MiB", "< 1,024 MiB"))
            bomb = {"image": b64(png(12000, 12000)), "vec": [0.0] * 4}
            t0 = time.perf_counter()
            code, body = s.post("/predict", bomb)
            rows.append(("pixel bomb (12000×12000 PNG, 140 KB)", f"{code} in {(time.perf_counter() - t0) * 1000:.0f} ms: "
                         f"{json.loads(body)['message'][:70]}…", "413 before decoding"))
            h = health_while(s, bomb, 6.0)
            rows.append(("/health while 3 pixel bombs are in flight", f"p50 {h['p50_ms']:.1f} ms, p99 {h['p99_ms']:.1f} ms, max {h['max_ms']:.1f} ms "
                         f"({h['health_n']} probes; {h['requests']} bombs, statuses {h['statuses']})", "p99 < 50 ms"))
            big = {"image": b64(png(side, side)), "vec": [0.0] * 4}
            h = health_while(s, big, 8.0)
            rows.append((f"/health while 3 largest allowed images ({side}×{side}) decode", f"p50 {h['p50_ms']:.1f} ms, p99 {h['p99_ms']:.1f} ms, "
                         f"max {h['max_ms']:.1f} ms ({h['requests']} images, statuses {h['statuses']})", "p99 < 50 ms"))
            rows.append(("media server peak RSS over all of the above", f"{s.hwm_mib():.0f} MiB", "< 1,024 MiB"))
        finally:
            s.close()

        # ---------------------------------------------------------------- plain server: records, body, timeout
        s = Server(plain)
        try:
            rec = {"vec": [0.1] * 16, "text": "good fine", "tab": {"x1": 0.3, "color": "red"}}
            assert s.post("/predict", rec)[0] == 200
            base = s.hwm_mib()
            tiny = json.dumps({"records": [{"text": "ok"}] * 40_000}).encode()
            t0 = time.perf_counter()
            code, body = s.post("/predict", tiny)
            rows.append((f"40,000 tiny text records ({len(tiny) / 1e6:.2f} MB body)", f"{code} in {(time.perf_counter() - t0) * 1000:.0f} ms "
                         f"({json.loads(body)['message']}); peak RSS +{s.hwm_mib() - base:.0f} MiB", "refused, no memory growth"))
            long_text = " ".join(["word"] * 900)  # ~4.5 KB: 1,024 of them fill the 5 MB body limit
            t0 = time.perf_counter()
            code, _ = s.post("/predict", {"records": [{**rec, "text": long_text}] * 1024})
            rows.append(("largest allowed JSON request (1,024 records, 4.7 MB)", f"{code} in {time.perf_counter() - t0:.2f} s; "
                         f"peak RSS {s.hwm_mib():.0f} MiB (+{s.hwm_mib() - base:.0f})", "< 1,024 MiB"))
        finally:
            s.close()
        s = Server(plain, "--timeout-s", "0.2", "--max-batch", "1", "--max-wait-ms", "0")
        try:
            rec = {"vec": [0.1] * 16, "text": "good fine", "tab": {"x1": 0.3, "color": "red"}}
            singles = []
            for _ in range(20):
                t0 = time.perf_counter()
                s.post("/predict", rec)
                singles.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            code, _ = s.post("/predict", {"records": [rec] * 1024})
            slow = time.perf_counter() - t0
            t0 = time.perf_counter()
            code2, _ = s.post("/predict", rec)
            after = (time.perf_counter() - t0) * 1000
            rows.append(("timed-out request, then the next (timeout 0.2 s, max batch 1, 1,024 records)",
                         f"{code} after {slow:.2f} s; next: {code2} in {after:.1f} ms (single request alone: median {statistics.median(singles):.1f} ms)",
                         "next not delayed"))
        finally:
            s.close()
        s = Server(plain, "--read-timeout-s", "2")
        try:
            r = slowloris(s, 200, 8.0)
            rows.append(("200 slow/silent sockets (read timeout 2 s)", f"{r['closed']}/{r['of']} closed by the server after "
                         f"{r['first_s']:.1f}–{r['last_s']:.1f} s; /health p99 {r['health_p99_ms']:.1f} ms meanwhile", "all closed"))
            rows.append(("schemathesis --checks all, vector+text+tabular, no key", schemathesis(s, None), "no failure"))
        finally:
            s.close()
        s = Server(plain, "--api-key-file", str(key))
        try:
            code = s.get("/openapi.json")[0], s.get("/docs")[0]
            rows.append(("/openapi.json and /docs without the key", f"{code[0]}, {code[1]}", "401"))
            rows.append(("schemathesis --checks all, vector+text+tabular, with key", schemathesis(s, "s3cret"), "no failure"))
        finally:
            s.close()
        s = Server(media, "--api-key-file", str(key))
        try:
            rows.append(("schemathesis --checks all, image+audio+vector, with key", schemathesis(s, "s3cret", examples=50),
                         "(file bytes: see below)"))
            rows.append(("same, all checks but positive_data_acceptance", schemathesis(s, "s3cret", "positive_data_acceptance", examples=50),
                         "no failure"))
        finally:
            s.close()
    total = time.perf_counter() - t_all
    lines = [
        "# Server abuse (issue 15, class 6)", "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}", f"- machine: {machine_info()}", f"- libraries: {library_versions(('fastapi', 'uvicorn', 'schemathesis'))}",
        f"- command: `{' '.join([Path(sys.executable).name, *sys.argv])}`", f"- load average (1/5/15 min) at start: {load_start}; at end: {load_average()}",
        f"- wall time: {total:.0f} s; seeds: training seed 0, schemathesis --seed 1",
        "- servers: `modalfuse serve` subprocesses on 127.0.0.1, default limits unless named (max body 5 MB, max records 1,024, "
        "decoded images/audio 256 MB float32 per request, timeout 10 s, read timeout 30 s, 256 connections)", "",
        "| case | measured | target |", "|---|---|---|", *[f"| {a} | {b} | {c} |" for a, b, c in rows], "",
        "Peak RSS is the server process's VmHWM (it includes the ~300 MiB that torch and the web stack hold at start).",
        "schemathesis' positive_data_acceptance sends schema-valid bytes as images and audio (e.g. a 1×1 PNG uploaded as",
        "audio); JSON Schema cannot state a file's format, so those uploads are answered 422. For models whose values",
        "JSON Schema can state exactly (vectors, text, tables) the document is exact and every check passes.",
    ]
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
