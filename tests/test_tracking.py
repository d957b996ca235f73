"""Tracking and lineage (issue 17): MLflow / TensorBoard loggers, export → register → serve models:/NAME/1 → audit log."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import distributed_job  # noqa: E402

from modalfuse.cli import main  # noqa: E402


def _config(tmp_path: Path, **train) -> Path:
    for name, n, seed in (("train.csv", 120, 0), ("test.csv", 40, 2)):
        distributed_job.table(n, seed).to_csv(tmp_path / name, index=False)
    cfg = {"data": {"train": "train.csv", "test": "test.csv", "target": "label", "task": "classification", "cache_dir": "none"},
           "modalities": [{"name": m, "kind": "vector", "columns": c, "encoder": {"dim": 8}} for m, c in distributed_job.COLUMNS.items()],
           "train": {"max_epochs": 3, "batch_size": 32, "patience": 0, "progress": False, "threads": 1, **train},
           "preset": "none"}  # one network: these tests are about its tracking, not about the recipe search
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path / "cfg.yaml"


def _run(capsys) -> Path:
    out = capsys.readouterr().out
    return Path(out.split("run folder: ")[1].split()[0])


def test_tensorboard_logger_writes_events(tmp_path, capsys, one_torch_thread):
    pytest.importorskip("tensorboard")
    assert main(["train", str(_config(tmp_path, logger="tensorboard")), "--run-dir", str(tmp_path / "runs")]) == 0
    run = _run(capsys)
    assert list((run / "tensorboard").glob("events.out.tfevents.*")) and (run / "metrics.csv").is_file()


def test_export_register_serve_audit(tmp_path, capsys, monkeypatch, one_torch_thread):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # the default store is ./mlruns
    store = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    assert main(["train", str(_config(tmp_path, logger="mlflow")), "--run-dir", str(tmp_path / "runs")]) == 0
    run = _run(capsys)
    info = json.loads((run / "tracking.json").read_text())
    assert info["tracking_uri"] == store
    client = MlflowClient(tracking_uri=store)
    trained = client.get_run(info["run_id"])
    assert len(client.get_metric_history(info["run_id"], "val_loss")) == 3  # one value per epoch
    assert trained.data.params["train.max_epochs"] == "3" and "test_accuracy" in trained.data.metrics
    assert {a.path for a in client.list_artifacts(info["run_id"])} >= {"config.yaml", "metrics.csv", "model"}

    csv = tmp_path / "train.csv"
    assert main(["export", str(run), str(tmp_path / "bundle"), "--data-file", str(csv), "--register", "digits"]) == 0
    out = capsys.readouterr().out
    assert "registered models:/digits/1" in out and f"child of run {info['run_id']}" in out
    card = json.loads((tmp_path / "bundle" / "card.json").read_text())
    version = client.get_model_version("digits", "1")
    # the card and the registry agree on the data checksums; lineage: config hash, parent run, versions
    assert json.loads(version.tags["modalfuse.data_sha256"]) == card["data"]["sha256"]
    assert card["data"]["sha256"][str(csv)] == hashlib.sha256(csv.read_bytes()).hexdigest()
    lineage = json.loads(version.tags["modalfuse.lineage"])
    assert lineage["parent_run"]["run_id"] == info["run_id"] == card["lineage"]["parent_run"]["run_id"]
    assert lineage["config_sha256"] == hashlib.sha256((run / "config.yaml").read_bytes()).hexdigest()
    assert lineage["versions"]["torch"] and client.get_run(version.run_id).data.tags["mlflow.parentRunId"] == info["run_id"]

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    audit = tmp_path / "audit.jsonl"
    key = tmp_path / "key.txt"
    key.write_text("s3cret-token")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    server = subprocess.Popen([sys.executable, "-m", "modalfuse.cli", "serve", "models:/digits/1", "--port", str(port),
                               "--audit-log", str(audit), "--api-key-file", str(key)], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        import httpx

        base, headers = f"http://127.0.0.1:{port}", {"Authorization": "Bearer s3cret-token"}
        for _ in range(120):
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        record = {"a": [0.1] * 6, "b": [0.2] * 4}
        ok = httpx.post(base + "/predict", json={"records": [record]}, headers=headers, timeout=30)
        assert ok.status_code == 200, ok.text
        assert httpx.post(base + "/predict", json={"records": [record]}, timeout=30).status_code == 401
    finally:
        server.terminate()
        log = server.communicate(timeout=30)[0]
    assert "serving models:/digits/1" in log
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    predicts = [x for x in lines if x["path"] == "/predict"]
    assert [x["status"] for x in predicts] == [200, 401]
    assert all(x["model"] == "models:/digits/1" and x["latency_ms"] >= 0 and x["time"] for x in lines)
    assert predicts[0]["key_id"] == hashlib.sha256(b"s3cret-token").hexdigest()[:12] and predicts[1]["key_id"] == "-"
    assert "s3cret" not in audit.read_text() and "payload" not in audit.read_text()  # no secrets, no bodies


def test_an_ensemble_run_is_one_mlflow_run_with_a_child_per_member(tmp_path, capsys, monkeypatch, one_torch_thread):
    """train.ensemble: 2 → RUN/tracking.json is the run-level MLflow run (config, summary, test metrics), each member's
    run is its child, the registered bundle is its child too; resuming the run logs into the runs it started."""
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["train", str(_config(tmp_path, logger="mlflow", ensemble=2, max_epochs=2)), "--run-dir", str(tmp_path / "runs")]) == 0
    assert "MLFLOW_TRACKING_URI" not in os.environ  # MLflow sets it; left set, a later run elsewhere would log here
    run = _run(capsys)
    top = json.loads((run / "tracking.json").read_text())
    members = [json.loads((run / f"member{i}" / "tracking.json").read_text()) for i in range(2)]
    client = MlflowClient(tracking_uri=top["tracking_uri"])
    parent = client.get_run(top["run_id"])
    assert top["members"] == 2 and parent.data.params["train.ensemble"] == "2" and "test_accuracy" in parent.data.metrics
    assert {a.path for a in client.list_artifacts(top["run_id"])} >= {"config.yaml", "summary.json", "model"}
    assert len({m["run_id"] for m in members} | {top["run_id"]}) == 3
    for m in members:  # each member's per-epoch metrics live in its own run, a child of the run-level one
        assert client.get_run(m["run_id"]).data.tags["mlflow.parentRunId"] == top["run_id"] == m["parent_run_id"]
        assert len(client.get_metric_history(m["run_id"], "val_loss")) == 2

    assert main(["export", str(run), str(tmp_path / "bundle"), "--register", "ens"]) == 0
    assert f"child of run {top['run_id']}" in capsys.readouterr().out

    # resuming the (finished) run makes no new MLflow run: the run level and the members keep theirs
    assert main(["train", str(run / "config.yaml"), "--resume", str(run)]) == 0
    assert json.loads((run / "tracking.json").read_text())["run_id"] == top["run_id"]
    assert [json.loads((run / f"member{i}" / "tracking.json").read_text())["run_id"] for i in range(2)] == [m["run_id"] for m in members]
    trained = [r for r in client.search_runs([top["experiment_id"]]) if r.data.tags.get("modalfuse.kind") != "bundle"]
    assert len(trained) == 3
