"""Checkpoints: safetensors + JSON round trip, damaged or half-written ones refused, resume from the previous good one."""
from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest
import torch

from modalfuse.api import MultimodalModel
from modalfuse.core.storage import WEIGHTS
from modalfuse.train.checkpoint import CheckpointError, checkpoints, decode, encode, latest_checkpoint, load_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _table(rows: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 3))
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)})


def _model(**train) -> MultimodalModel:
    return MultimodalModel([{"name": "x", "kind": "vector", "columns": ["a", "b", "c"]}], "y", model={"dropout": 0.3},
                           train={"max_epochs": 4, "batch_size": 16, "patience": 0, "progress": False, "threads": 1,
                                  "checkpoint_every_steps": 5, "modality_dropout": 0.1, **train})


def _weights(model: MultimodalModel) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.net.state_dict().items()}


def test_encode_decode_round_trip_without_pickles():
    tree = {"a": (1, 2.5, None), 3: {"t": torch.arange(4.0)}, "rng": random.getstate(), "np": np.random.get_state(),
            "list": [True, "x", float("inf")]}
    tensors: dict[str, torch.Tensor] = {}
    skeleton = encode(tree, tensors)
    back = decode(json.loads(json.dumps(skeleton)), tensors)
    assert back["a"] == (1, 2.5, None) and torch.equal(back[3]["t"], torch.arange(4.0))
    assert back["rng"][1] == random.getstate()[1] and back["list"] == [True, "x", float("inf")]
    assert back["np"][0] == "MT19937" and np.array_equal(back["np"][1], np.random.get_state()[1])
    with pytest.raises(CheckpointError, match="without pickling"):
        encode({"f": object()}, {})


def test_damaged_checkpoint_is_refused_and_the_previous_good_one_resumes_exactly(tmp_path, capsys):
    data = _table()
    reference = _model().fit(data, run_dir=tmp_path / "ref")
    run = tmp_path / "run"
    _model().fit(data, run_dir=run)
    newest, previous = checkpoints(run)[:2]
    assert newest.name.startswith("epoch0003") and (newest / "state.json").is_file()
    # a checkpoint whose weights were cut short (a torn write) fails its manifest and is skipped
    weights = newest / WEIGHTS
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="was modified"):
        load_checkpoint(newest)
    # a temporary folder a killed writer left is never considered
    (run / "checkpoints" / ".epoch0003-step0000999.abc.tmp").mkdir()
    assert latest_checkpoint(run) == previous
    assert "skipping damaged checkpoint" in capsys.readouterr().err
    resumed = _model().fit(data, resume=run)
    assert resumed.history["resumed_from"] == str(previous)
    ref = _weights(reference)
    assert all(torch.equal(ref[k], v) for k, v in _weights(resumed).items())
    assert not list((run / "checkpoints").glob(".*.tmp"))  # cleaned on resume
    assert resumed.evaluate(data) == reference.evaluate(data)


def test_a_folder_without_manifest_is_never_loaded(tmp_path):
    data = _table(120)
    run = tmp_path / "run"
    _model(max_epochs=2, checkpoint_every_steps=None).fit(data, run_dir=run)
    newest, previous = checkpoints(run)[:2]
    (newest / "manifest.json").unlink()
    with pytest.raises(CheckpointError, match="manifest.json is missing"):
        load_checkpoint(newest)
    assert latest_checkpoint(run) == previous


def test_early_stopped_run_resumes_stopped(tmp_path):
    """A run that early stopping ended stays ended: resuming its last checkpoint trains no further epoch."""
    data = _table()
    run = tmp_path / "run"
    first = _model(max_epochs=40, patience=1, lr=0.05, checkpoint_every_steps=None).fit(data, run_dir=run)
    assert first.history["epochs"] < 40
    again = _model(max_epochs=40, patience=1, lr=0.05, checkpoint_every_steps=None).fit(data, resume=run)
    assert again.history["epochs"] == first.history["epochs"] and again.history["best_epoch"] == first.history["best_epoch"]
    ref = _weights(first)
    assert all(torch.equal(ref[k], v) for k, v in _weights(again).items())


@pytest.mark.parametrize("workers,every", [(0, 3), (2, 3), (2, None)])
def test_disk_storage_and_loader_workers_resume_exactly(tmp_path, workers, every):
    """Disk shards read by DataLoader worker processes: a run resumed from a mid-epoch (``every`` steps) or an
    epoch-end checkpoint ends with the weights of the run that was not stopped (the numbered-batch sampler restarts
    part-way with its epoch count; the resumed loader's new workers draw their seed as the first pass's did)."""
    import shutil

    data = _table(160)

    def model() -> MultimodalModel:
        return MultimodalModel([{"name": "x", "kind": "vector", "columns": ["a", "b", "c"]}], "y", model={"dropout": 0.3},
                               train={"max_epochs": 3, "batch_size": 16, "patience": 0, "progress": False, "threads": 1,
                                      "checkpoint_every_steps": every, "modality_dropout": 0.1, "workers": workers},
                               storage="disk", cache_dir="none")

    reference = model().fit(data, run_dir=tmp_path / "ref")
    run = tmp_path / "run"
    model().fit(data, run_dir=run)
    newest, previous = checkpoints(run)[:2]
    shutil.rmtree(newest)
    skip = json.loads((previous / "state.json").read_text())["callbacks"]["Checkpointer"]["sampler"]["skip"]
    assert (skip > 0) == (every is not None)  # mid-epoch, or the end of epoch 2 of 3
    resumed = model().fit(data, resume=run)
    assert resumed.history["resumed_from"] == str(previous)
    ref = _weights(reference)
    assert all(torch.equal(ref[k], v) for k, v in _weights(resumed).items())
