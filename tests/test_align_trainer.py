"""AlignedModel trains through fit_net: per-epoch metrics.csv, the warm-up schedule, checkpoints and exact resume."""
from __future__ import annotations

import csv
import itertools
import os
import signal

import lightning as L
import pytest
import torch

from modalfuse.align import AlignedModel
from modalfuse.align.model import AlignNet, _codes
from modalfuse.align.module import AlignModule
from modalfuse.cli import interrupt
from modalfuse.errors import ConfigError
from modalfuse.train import batches
from modalfuse.train.checkpoint import checkpoints
from test_alignment import _paired_frame
from test_checkpoint import _weights

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(**train) -> AlignedModel:
    """Dropout (training draws), a class classifier (training-only weights), warm-up and early stopping: all of the
    state a resumed run must restore."""
    mods = [{"name": n, "kind": "vector", "encoder": {"name": "linear", "dim": 16}} for n in ("left", "right")]
    cfg = {"max_epochs": 4, "batch_size": 16, "lr": 1e-2, "patience": 2, "val_fraction": 0.25, "seed": 0, "progress": False,
           "threads": 1, "warmup_epochs": 2, **train}
    align = {"dim": 8, "projection_hidden": 12, "dropout": 0.2, "label_weight": 0.3, "class_weight": 0.5}
    return AlignedModel(mods, label="label", align=align, train=cfg, cache_dir="none")


def _rows(run) -> list[dict]:
    with open(run / "metrics.csv") as fh:
        return list(csv.DictReader(fh))


class _SignalAt(L.Callback):
    """Send this process SIGTERM at the end of training batch ``batch`` of epoch ``epoch`` (as a user's ``kill``)."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            os.kill(os.getpid(), signal.SIGTERM)


def test_alignment_fit_writes_metrics_per_epoch_with_warmup_then_constant_lr(tmp_path):
    model = _model().fit(_paired_frame(96, 0), run_dir=tmp_path / "run")
    rows = _rows(tmp_path / "run")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3] and model.history["epochs"] == 4
    assert {"train_loss", "val_loss", "val_select", "temperature", "lr"} <= set(rows[0])
    # 72 training rows in batches of 16: 5 steps an epoch, 10 warm-up steps; after them train.lr, no decay
    assert [float(r["lr"]) for r in rows] == pytest.approx([0.006, 0.01, 0.01, 0.01])
    best = min(range(4), key=lambda i: float(rows[i]["val_select"]))
    assert model.history["best_epoch"] == best
    assert model.history["best_val_loss"] == pytest.approx(float(rows[best]["val_select"]), abs=1e-6)
    assert (tmp_path / "run" / "train_report.json").is_file() and checkpoints(tmp_path / "run")
    assert not any(k.startswith("classifier") for k in model.net.state_dict())  # training only


def test_alignment_fit_is_a_plain_loop_over_the_seeded_batches():
    """The training order alignment keeps: initial weights after torch.manual_seed(seed), the seeded order of
    ``batches``, one AdamW step per batch at train.lr, dropout drawing on from the initial weights' RNG stream.

    Each epoch takes its ``len(loader)`` batches and stops (Lightning's loop): with 64 rows in batches of 16 the
    sampler is not run to its end, so it never draws the empty tail permutation a ``for`` loop over it would."""
    data = _paired_frame(64, 0)
    fitted = _model(val_fraction=0.0, warmup_epochs=0, max_epochs=3).fit(data)
    plain = _model()
    train, labels = plain.featurize(data, fit=True)
    torch.manual_seed(0)
    net = AlignNet(plain.modalities, plain.align_config, {n: p.encoder_info() for n, p in plain.preprocessors.items()})
    module = AlignModule(net, plain.align_config, plain.train_config, _codes(labels))
    optimiser = torch.optim.AdamW(module.parameters(), lr=1e-2, weight_decay=plain.train_config.weight_decay)
    module.train()
    loader = batches(train, 16, shuffle=True, seed=0)  # one generator: each epoch draws the next order
    for _ in range(3):
        for batch in itertools.islice(loader, len(loader)):
            loss = module.loss(batch, module.train_labels)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    ref = net.state_dict()
    assert all(torch.equal(ref[k], v) for k, v in _weights(fitted).items())


@pytest.mark.parametrize("epoch,batch", [(1, 4), (2, 1)], ids=["after-epoch-1", "mid-epoch-2"])
def test_alignment_stopped_and_resumed_matches_an_uninterrupted_run(tmp_path, epoch, batch):
    data = _paired_frame(96, 0)
    reference = _model().fit(data, run_dir=tmp_path / "ref")
    stopped = _model()
    stopped.callbacks = [_SignalAt(epoch, batch)]
    with interrupt.interruptible(), pytest.raises(interrupt.Interrupted) as stop:
        stopped.fit(data, run_dir=tmp_path / "run")
    assert stop.value.checkpoint.name.startswith(f"epoch{epoch:04d}")
    resumed = _model().fit(data, resume=tmp_path / "run")
    assert resumed.history["resumed_from"] == str(stop.value.checkpoint)
    ref = _weights(reference)
    assert all(torch.equal(ref[k], v) for k, v in _weights(resumed).items())
    assert resumed.history["best_epoch"] == reference.history["best_epoch"]
    drop = ("seconds",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in _rows(tmp_path / "run")] == \
           [{k: v for k, v in r.items() if k not in drop} for r in _rows(tmp_path / "ref")]


def test_alignment_refuses_to_split_its_batches_across_processes(monkeypatch):
    """Under torchrun ``devices: 1`` takes the launcher's processes; InfoNCE's negatives are the batch, so alignment refuses."""
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="AlignModule trains in one process only"):
        _model(max_epochs=1).fit(_paired_frame(32, 0))
