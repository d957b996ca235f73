"""Corruptions, per-sample modality dropout, robustness areas and the conflict protocol."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from modalfuse.data.batch import Batch
from modalfuse.data.dataset import Features, SkipReport
from modalfuse.evaluate.corruptions import CORRUPTIONS, corrupt
from modalfuse.evaluate.robustness import conflict_features, effective_robustness, relative_robustness
from modalfuse.objectives import drop_modalities

INPUTS = {
    "vector": (torch.randn(6, 10), {}),
    "tabular": (torch.cat([torch.randn(6, 3), torch.zeros(6, 3), torch.randint(1, 4, (6, 2)).float()], dim=1), {"n_numeric": 3}),
    "image": (torch.randn(6, 1, 16, 16), {}),
    "audio": (torch.randn(6, 4000), {"sample_rate": 8000}),
    "text": (torch.cat([torch.randint(2, 50, (6, 12)), torch.zeros(6, 4, dtype=torch.long)], dim=1), {"pad_id": 0, "unk_id": 1}),
    "sequence": (torch.randint(1, 21, (6, 30)), {"pad_id": 0, "vocab_size": 21}),
}
CASES = [(kind, name) for kind, table in CORRUPTIONS.items() for name in table]


@pytest.mark.parametrize("kind,name", CASES)
def test_corruption_changes_input_only_when_level_positive(kind, name):
    x, info = INPUTS[kind]
    assert torch.equal(corrupt(kind, name, x, 0.0, seed=1, info=info), x)
    changed = corrupt(kind, name, x, 0.5, seed=1, info=info)
    assert changed.shape == x.shape and changed.dtype == x.dtype
    assert not torch.equal(changed, x)
    assert torch.equal(changed, corrupt(kind, name, x, 0.5, seed=1, info=info))  # seeded


def test_stronger_corruption_changes_more():
    x, info = INPUTS["image"]
    weak = (corrupt("image", "occlusion", x, 0.1, info=info) != x).float().mean()
    strong = (corrupt("image", "occlusion", x, 0.8, info=info) != x).float().mean()
    assert strong > weak > 0


def test_tabular_noise_leaves_categories_alone():
    x, info = INPUTS["tabular"]
    noisy = corrupt("tabular", "gaussian_noise", x, 1.0, info=info)
    assert torch.equal(noisy[:, 3:], x[:, 3:]) and not torch.equal(noisy[:, :3], x[:, :3])


def test_modality_dropout_is_drawn_per_sample_and_keeps_one():
    g = torch.Generator().manual_seed(0)
    n = 4000
    masks = {m: torch.ones(n, dtype=torch.bool) for m in "abc"}
    masks["c"][: n // 2] = False
    dropped = drop_modalities(masks, 0.5, g)
    stacked = torch.stack([dropped[m] for m in "abc"], dim=1)
    assert stacked.any(dim=1).all()  # every sample keeps a modality
    assert not dropped["c"][: n // 2].any()  # nothing absent is revived
    rate = 1 - dropped["a"].float().mean()
    assert 0.35 < rate < 0.6  # about p, per sample
    # per sample, not per batch: within one batch both kept and dropped occur for a modality
    assert 0 < dropped["b"][:64].sum() < 64
    assert drop_modalities(masks, 0.0, g) is masks


def test_training_applies_modality_dropout(monkeypatch):
    from modalfuse.config import TrainConfig
    from modalfuse.train import module as module_mod

    calls = []
    real = module_mod.drop_modalities
    monkeypatch.setattr(module_mod, "drop_modalities", lambda masks, p: calls.append(p) or real(masks, p))

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = type("H", (), {"loss": staticmethod(lambda out, y: out.sum())})()

        def forward(self, batch):
            return type("O", (), {"output": torch.stack([batch.masks[m].float() for m in batch.masks], 1).requires_grad_(), "aux": {}})()

    lit = module_mod.MultimodalModule(Net(), TrainConfig(modality_dropout=0.3), 0.0)
    lit.log = lambda *a, **k: None
    batch = Batch({"a": torch.zeros(4, 1)}, {"a": torch.ones(4, dtype=torch.bool)}, torch.zeros(4), torch.arange(4))
    lit.training_step(batch, 0)
    assert calls == [0.3]


def test_robustness_areas():
    levels = [0.0, 0.5, 1.0]
    assert relative_robustness(levels, [1.0, 1.0, 1.0]) == pytest.approx(1.0)
    assert relative_robustness(levels, [1.0, 0.5, 0.0]) == pytest.approx(0.5)
    # same shape as the baseline after shifting to the same clean accuracy: no effective gain
    assert effective_robustness(levels, [0.9, 0.7, 0.5], [0.8, 0.6, 0.4]) == pytest.approx(0.0)
    assert effective_robustness(levels, [0.9, 0.9, 0.9], [0.9, 0.5, 0.1]) == pytest.approx(0.4)


def test_conflict_protocol_swaps_views_from_other_classes():
    n = 200
    y = torch.arange(n) % 4
    inputs = {"a": y[:, None].float().repeat(1, 3), "b": y[:, None].float().repeat(1, 2) + 10}
    masks = {k: torch.ones(n, dtype=torch.bool) for k in inputs}
    feats = Features(inputs, masks, y, list(range(n)), SkipReport(None, n, n))
    out = conflict_features(feats, seed=0)
    assert torch.equal(feats.inputs["a"], inputs["a"])  # the original is untouched
    noisy = [(out.inputs[k] - inputs[k]).abs().sum(1) for k in inputs]
    changed = (noisy[0] > 0) | (noisy[1] > 0)
    # swapped rows carry a view of another class (whole-number offset), noisy rows are off-grid
    swapped_a = (out.inputs["a"][:, 0] == out.inputs["a"][:, 0].round()) & (out.inputs["a"][:, 0] != y.float())
    assert 60 <= int(changed.sum()) <= 100  # 40 % swapped + 10 % noised, with overlap
    assert int(swapped_a.sum()) > 20
    assert np.all(out.inputs["a"][swapped_a, 0].numpy() != y[swapped_a].numpy())


def test_conflict_protocol_rcml_noise_hits_fewer_views_than_all():
    n, views = 400, 4
    y = torch.zeros(n, dtype=torch.long)
    inputs = {f"v{m}": torch.rand(n, 3) for m in range(views)}
    masks = {k: torch.ones(n, dtype=torch.bool) for k in inputs}
    feats = Features(inputs, masks, y, list(range(n)), SkipReport(None, n, n))
    # one class only: no view can be swapped, so every change is noise
    counts = {}
    for mode in ("all", "random"):
        out = conflict_features(feats, seed=1, swap_fraction=0.0, noise_views=mode)
        hit = torch.stack([(out.inputs[k] != inputs[k]).any(1) for k in inputs], 1)
        noisy = hit.any(1)
        assert 0 < int(noisy.sum()) <= 40
        counts[mode] = hit[noisy].sum(1)
    assert torch.all(counts["all"] == views)
    assert int(counts["random"].max()) <= views - 1 and float(counts["random"].float().mean()) < views - 1
    with pytest.raises(ValueError, match="noise_views"):
        conflict_features(feats, noise_views="some")
