"""train.precision, train.compile, train.workers and the thread defaults for shared machines."""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from modalfuse.api import MultimodalModel
from modalfuse.errors import ConfigError
from modalfuse.train import threads

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _table(rows: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(rows, 3))
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": (x[:, 0] - x[:, 2] > 0).astype(int)})


def _model(**train) -> MultimodalModel:
    return MultimodalModel([{"name": "x", "kind": "vector", "columns": ["a", "b", "c"]}], "y",
                           train={"max_epochs": 2, "batch_size": 32, "progress": False, "threads": 1, **train})


def test_16_mixed_is_a_config_error_on_cpu():
    with pytest.raises(ConfigError, match="precision: 16-mixed needs a CUDA GPU"):
        _model(precision="16-mixed")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="train.precision: 16-mixed needs a CUDA GPU"):
            _model(precision="16-mixed", accelerator="auto").fit(_table())
    assert _model(precision=32).train_config.precision == "32"
    with pytest.raises(ConfigError, match="precision"):
        _model(precision="8-bit")


def test_bf16_mixed_computes_in_bfloat16_and_keeps_float32_weights():
    model = _model(precision="bf16-mixed")
    seen: list[torch.dtype] = []
    original = torch.nn.Linear.forward

    def spy(self, x):
        out = original(self, x)
        seen.append(out.dtype)
        return out

    torch.nn.Linear.forward = spy
    try:
        model.fit(_table())
    finally:
        torch.nn.Linear.forward = original
    assert torch.bfloat16 in seen
    assert all(p.dtype == torch.float32 for p in model.net.parameters())
    assert model.evaluate(_table())["accuracy"] > 0.6


def test_compile_wraps_the_forward_pass():
    model = _model(compile="eager").fit(_table())
    assert getattr(model.net, "_compiled_call_impl", None) is not None
    assert model.evaluate(_table())["accuracy"] > 0.6


def test_worker_processes_give_the_same_weights():
    data = _table()
    inline, workers = _model().fit(data), _model(workers=2).fit(data)
    a, b = inline.net.state_dict(), workers.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_threads_follow_the_free_cores(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    monkeypatch.setattr(threads, "busy_cores_elsewhere", lambda sample_s=0.1: 1.2)
    assert threads.default_threads(current=4) == 3
    assert threads.default_threads(current=2) == 2  # never more than torch's setting
    monkeypatch.setattr(threads, "busy_cores_elsewhere", lambda sample_s=0.1: 7.0)
    assert threads.default_threads(current=4) == 1
    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "busy_cores_elsewhere", lambda sample_s=0.1: 0.0)
    torch.set_num_threads(3)
    try:
        with threads.training_threads(None) as n:
            assert n == 3 == torch.get_num_threads()
        with threads.training_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 3  # restored after the fit
    finally:
        torch.set_num_threads(before)


def test_a_competing_process_is_seen_and_own_children_are_not():
    import os
    import signal

    # a competitor that is not our descendant (the shell that starts it exits; it is reparented)
    started = subprocess.run(["sh", "-c", f"'{sys.executable}' -c 'while True: pass' >/dev/null 2>&1 & echo $!"],
                             capture_output=True, text=True, timeout=30)
    rival = int(started.stdout.strip())
    try:
        assert threads.busy_cores_elsewhere(sample_s=0.5) >= 0.5
    finally:
        os.kill(rival, signal.SIGKILL)
    own = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # our child: this run's own work
    try:
        time.sleep(0.3)
        assert threads.busy_cores_elsewhere(sample_s=0.5) < 0.5
    finally:
        own.kill()
        own.wait()
