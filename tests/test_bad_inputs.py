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


def _many_int_classes() -> str:
    return "a,b,y\n" + "".join(f"{i},{i + 1},{i}\n" for i in range(68))


GENERATORS = {"many_int_classes": _many_int_classes}


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input(case, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MODALFUSE_CACHE", str(tmp_path / "cache"))
    for name in case.get("mkdir", []):
        (tmp_path / name).mkdir()
    for name, text in (case.get("files") or {}).items():
        (tmp_path / name).write_text(text.replace("{tmp}", str(tmp_path)))
    for name, hexbytes in (case.get("bytes") or {}).items():
        (tmp_path / name).write_bytes(bytes.fromhex(hexbytes.replace(" ", "")))
    for name, gen in (case.get("generate") or {}).items():
        (tmp_path / name).write_text(GENERATORS[gen]())
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


def _table(folder: Path, rows: int = 400) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    lines = ["a,b,y"] + [f"{rng.normal():.4f},{rng.normal():.4f},{i % 2}" for i in range(rows)]
    (folder / "train.csv").write_text("\n".join(lines) + "\n")
    cfg = folder / "c.yaml"
    cfg.write_text("data: {train: train.csv, target: y, cache_dir: none}\nmodalities: [{name: x, kind: vector, columns: [a, b]}]\n"
                   "train: {max_epochs: 100000, patience: 0, progress: false, threads: 1, batch_size: 4}\n")
    return cfg


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_stopped_training_exits_nonzero_and_says_how_to_resume(tmp_path, sig, code):
    cfg = _table(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MODALFUSE_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "modalfuse.cli", "train", str(cfg), "--run-dir", str(tmp_path / "runs")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 60
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
