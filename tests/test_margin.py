"""The max-margin (SVM) head, the identity encoder and early fusion without shared layers: a linear SVM in the library."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
import torch

from modalfuse.api import MultimodalModel
from modalfuse.config import ModalityConfig, ModelConfig
from modalfuse.data.batch import Batch
from modalfuse.encoders import build_encoder
from modalfuse.errors import ConfigError
from modalfuse.evaluate.benchmark import load_benchmark
from modalfuse.heads import MarginHead, make_head
from modalfuse.heads.margin import multiclass_hinge
from modalfuse.model import MultimodalNet


def test_multiclass_hinge_matches_hand_computation():
    scores = torch.tensor([[2.0, 1.5, -1.0], [0.0, 3.0, 0.5], [1.0, 1.0, 4.0]])
    target = torch.tensor([0, 1, 0])
    # row 0: 1 + 1.5 - 2 = 0.5; row 1: 1 + max(0, 0.5) - 3 < 0 -> 0; row 2: 1 + 4 - 1 = 4
    assert torch.allclose(multiclass_hinge(scores, target), torch.tensor([0.5, 0.0, 4.0]))


def test_margin_head_adds_half_l2_of_its_weights():
    torch.manual_seed(0)
    head = MarginHead(4, 0, 3, 0.0, l2=0.2)
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    out = head(x)
    weight = head.net[-1].weight
    expected = multiclass_hinge(out, y).mean() + 0.1 * (weight ** 2).sum()
    assert torch.allclose(head.loss(out, y), expected)
    assert torch.allclose(head.proba(out).sum(dim=1), torch.ones(5))


def test_head_kinds_are_checked_against_the_task():
    with pytest.raises(ConfigError, match="'margin' does not apply to regression"):
        make_head("regression", 1, 8, 0, 0.0, "margin")
    with pytest.raises(ConfigError, match="'gaussian' does not apply to classification"):
        make_head("classification", 3, 8, 0, 0.0, "gaussian")


def test_identity_encoder_passes_vectors_through_and_refuses_other_inputs():
    encoder = build_encoder("identity", 64, {"input_dim": 7}, {})
    x = torch.randn(3, 7)
    assert encoder.dim == 7 and torch.equal(encoder(x), x)
    series = build_encoder("identity", 64, {"channels": 2, "length": 5}, {}, kind="timeseries")
    s = torch.randn(3, 2, 5)
    assert series.dim == 10 and torch.equal(series(s), s.reshape(3, 10))  # channels × steps, flattened
    with pytest.raises(ConfigError, match=r"encoder .identity. \(for vector or timeseries modalities\) needs input_dim.*text kind"):
        build_encoder("identity", 64, {"vocab_size": 100}, {}, kind="text")


def test_identity_encoders_early_fusion_without_layers_and_linear_head_is_a_linear_model():
    mods = [ModalityConfig(name="a", kind="vector", encoder={"name": "identity"}), ModalityConfig(name="b", kind="vector", encoder={"name": "identity"})]
    cfg = ModelConfig(fusion={"name": "early", "options": {"layers": 0}}, head="margin", head_hidden=0, dropout=0.0)
    net = MultimodalNet.build(mods, cfg, {"a": {"input_dim": 3}, "b": {"input_dim": 2}}, "classification", 4)
    assert net.fusion.out_dim == 3 + 2 + 2  # both inputs plus one presence flag per modality
    g = torch.Generator().manual_seed(0)
    inputs = {"a": torch.randn(6, 3, generator=g), "b": torch.randn(6, 2, generator=g)}
    masks = {"a": torch.ones(6, dtype=torch.bool), "b": torch.ones(6, dtype=torch.bool)}
    out = net(Batch(inputs, masks, torch.zeros(6, dtype=torch.long), torch.arange(6))).output
    linear = net.head.net[-1]
    features = torch.cat([inputs["a"], inputs["b"], torch.ones(6, 2)], dim=1)
    assert torch.allclose(out, features @ linear.weight.T + linear.bias, atol=1e-6)
    assert isinstance(net.head, MarginHead)
    # typed options: refused when the config is built, before any network exists
    with pytest.raises(ValidationError, match=r"options\.layers: Input should be greater than or equal to 0 \(got -1\)"):
        MultimodalNet.build(mods, ModelConfig(fusion={"name": "early", "options": {"layers": -1}}, head="margin"),
                            {"a": {"input_dim": 3}, "b": {"input_dim": 2}}, "classification", 4)


def test_margin_model_trains_to_the_crammer_singer_svm(tmp_path):
    """Full-batch training of identity encoders + early fusion (no layers) + margin head gives scikit-learn's
    Crammer–Singer linear SVM with C = 1 / (margin_l2 · n): the two agree on a grid over overlapping classes
    (cross-entropy training of the same linear model agrees on about 95 % of it)."""
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 40)
    points = np.array([[0.0, 2.0], [2.0, -1.0], [-2.0, -1.0]])[labels] + rng.normal(scale=1.2, size=(120, 2))
    frame = pd.DataFrame({"x": list(points.astype(np.float32)), "y": labels})
    model = MultimodalModel(
        [{"name": "x", "kind": "vector", "encoder": {"name": "identity"}}], "y",
        {"fusion": {"name": "early", "options": {"layers": 0}}, "head": "margin", "margin_l2": 0.05, "head_hidden": 0, "dropout": 0.0},
        {"max_epochs": 400, "batch_size": 120, "lr": 0.05, "weight_decay": 0.0, "val_fraction": 0.0, "patience": 0, "progress": False},
        task="classification", cache_dir="none",
    ).fit(frame)
    pre = model.preprocessors["x"]
    mean, std = np.asarray(pre.mean), np.asarray(pre.std)
    # intercept_scaling makes liblinear's (penalised) intercept feature nearly free, as the head's bias is
    svm = LinearSVC(multi_class="crammer_singer", C=1 / (0.05 * 120), intercept_scaling=10, max_iter=100_000)
    svm.fit((points - mean) / std, labels)
    gx, gy = np.meshgrid(np.linspace(-5, 5, 41), np.linspace(-5, 5, 41))
    grid = np.c_[gx.ravel(), gy.ravel()]
    grid_frame = pd.DataFrame({"x": list(grid.astype(np.float32))})
    ours = model.predict(grid_frame)
    assert np.mean(ours == svm.predict((grid - mean) / std)) > 0.99
    before = model.evaluate(frame)["log_loss"]
    assert model.calibrate(frame) < 1.0 and model.evaluate(frame)["log_loss"] < before  # hinge scores are too flat as logits
    loaded = MultimodalModel.load(model.save(tmp_path / "svm"))  # the head kind, its penalty and the identity encoder are saved
    assert isinstance(loaded.net.head, MarginHead) and loaded.net.head.l2 == 0.05
    assert np.array_equal(loaded.predict(grid_frame), ours)


def test_benchmark_method_model_overrides_are_validated_at_load(tmp_path):
    path = tmp_path / "b.yaml"
    path.write_text("name: x\ndataset: handwritten\nmethods:\n  - fusion: {name: early}\n    model: {head: svm}\n")
    with pytest.raises(ConfigError, match=r"methods\[0\]\.model: head"):
        load_benchmark(path)
    path.write_text("name: x\ndataset: handwritten\nmethods:\n  - fusion: {name: early}\n    model: {head: margin, margin_l2: 0.1}\n")
    assert load_benchmark(path).methods[0].model == {"head": "margin", "margin_l2": 0.1}
