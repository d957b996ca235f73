"""Exact resume of ``modalfuse train``: a subprocess killed with SIGKILL mid-run, or stopped with SIGTERM, continues
with ``--resume`` to weights byte-identical to one uninterrupted run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from modalfuse.cli import main
from modalfuse.train.checkpoint import checkpoints

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny table and config (dropout and modality dropout draw random numbers), and one uninterrupted run."""
    folder = tmp_path_factory.mktemp("resume")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    rows = ["a,b,c,y"] + [f"{a:.4f},{b:.4f},{c:.4f},{int(a + b > 0)}" for a, b, c in x]
    (folder / "train.csv").write_text("\n".join(rows) + "\n")
    cfg = folder / "c.yaml"
    cfg.write_text("data: {train: train.csv, target: y, cache_dir: none}\n"
                   "modalities: [{name: x, kind: vector, columns: [a, b, c]}]\nmodel: {dropout: 0.3}\n"
                   "train: {max_epochs: 8, patience: 0, progress: false, threads: 1, batch_size: 8, "
                   "checkpoint_every_steps: 7, modality_dropout: 0.1}\n")
    assert main(["train", str(cfg), "--run-dir", str(folder / "ref")]) == 0
    (reference,) = (folder / "ref").iterdir()
    return folder, cfg, (reference / "model" / "weights.safetensors").read_bytes()


def _start(folder: Path, cfg: Path, name: str) -> tuple[subprocess.Popen, Path]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "modalfuse.cli", "train", str(cfg), "--run-dir", str(folder / name)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:  # wait for training to be under way
        runs = list((folder / name).glob("*"))
        if runs and len(checkpoints(runs[0])) >= 2:
            return proc, runs[0]
        time.sleep(0.01)
    proc.kill()
    pytest.fail(f"training did not get under way: {proc.communicate(timeout=30)[1][-2000:]}")


def test_sigkill_mid_run_then_resume_is_byte_identical(setup):
    folder, cfg, reference = setup
    proc, run = _start(folder, cfg, "killed")
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "model").exists()  # killed mid-run, before the model was saved
    assert main(["train", str(cfg), "--resume", str(run)]) == 0
    assert (run / "model" / "weights.safetensors").read_bytes() == reference


def test_sigterm_writes_a_checkpoint_exits_nonzero_and_resumes(setup):
    folder, cfg, reference = setup
    proc, run = _start(folder, cfg, "stopped")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM while training" in err and f"--resume {run}" in err, err
    assert not (run / "model").exists()
    assert main(["train", str(cfg), "--resume", str(run)]) == 0
    assert (run / "model" / "weights.safetensors").read_bytes() == reference


def test_resume_refuses_a_different_config(setup, tmp_path, capsys):
    folder, cfg, _ = setup
    (run,) = (folder / "ref").iterdir()
    other = tmp_path / "other.yaml"
    other.write_text(cfg.read_text().replace("train.csv", str(folder / "train.csv")).replace("batch_size: 8", "batch_size: 16"))
    assert main(["train", str(other), "--resume", str(run)]) == 2
    assert "train.batch_size = 8, the config gives 16" in capsys.readouterr().err


def test_a_deferred_signal_reaches_the_trainer_and_a_second_one_stops_at_once():
    from modalfuse.cli import interrupt

    class Target:
        pending = None

        def notice(self, signum):
            self.pending = signum

    target = Target()
    with interrupt.interruptible():
        interrupt.defer(target)
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            assert target.pending == signal.SIGTERM
            with pytest.raises(interrupt.Interrupted) as stop:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
            assert stop.value.exit_code == 130
        finally:
            interrupt.undefer(target)


def test_a_run_saved_before_settings_were_added_resumes(setup, tmp_path):
    """A run folder whose config.yaml predates settings the library added since (here auto.ensemble_rounds,
    auto.engine, auto.address, recipes) resumes: missing settings take their defaults, as the config's do."""
    import shutil

    import yaml

    folder, cfg, reference = setup
    (ref,) = (folder / "ref").iterdir()
    run = tmp_path / "old"
    shutil.copytree(ref, run)
    (run / "model").unlink() if (run / "model").is_file() else shutil.rmtree(run / "model")
    saved = yaml.safe_load((run / "config.yaml").read_text())
    for key in ("ensemble_rounds", "engine", "address"):
        del saved["auto"][key]
    del saved["recipes"]
    (run / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    assert main(["train", str(cfg), "--resume", str(run)]) == 0
    assert (run / "model" / "weights.safetensors").read_bytes() == reference
