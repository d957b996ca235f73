"""Multimodal mixup, OGM-GE gradient modulation, per-modality auxiliary losses and unimodal probes."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from modalfuse.config import ModalityConfig, ModelConfig, TrainConfig
from modalfuse.data.batch import Batch
from modalfuse.errors import ConfigError
from modalfuse.model import MultimodalNet
from modalfuse.objectives import Mix, correct_class_scores, draw_mix, modulate_gradients, modulation_coefficients
from modalfuse.train import module as module_mod
from modalfuse.train.module import MultimodalModule

MODALITIES = [ModalityConfig(name="a", kind="vector"), ModalityConfig(name="b", kind="vector")]
INFO = {"a": {"input_dim": 5}, "b": {"input_dim": 3}}


def make_net(fusion: str = "concat", n_classes: int = 3) -> MultimodalNet:
    torch.manual_seed(0)
    return MultimodalNet.build(MODALITIES, ModelConfig(fusion={"name": fusion, "dim": 8}, head_hidden=0, dropout=0.0), INFO, "classification", n_classes)


def make_batch(n: int = 8, n_classes: int = 3) -> Batch:
    g = torch.Generator().manual_seed(1)
    inputs = {"a": torch.randn(n, 5, generator=g), "b": torch.randn(n, 3, generator=g)}
    masks = {m: torch.ones(n, dtype=torch.bool) for m in inputs}
    return Batch(inputs, masks, torch.arange(n) % n_classes, torch.arange(n))


# --------------------------------------------------------------------------- mixup

def test_mixup_uses_one_lambda_and_one_partner_for_all_modalities():
    torch.manual_seed(3)
    n = 16
    masks = {m: torch.ones(n, dtype=torch.bool) for m in "abc"}
    mix = draw_mix(masks, alpha=1.0)
    assert 0.0 < mix.lam < 1.0
    assert sorted(mix.partner.tolist()) == list(range(n))  # a permutation of the batch
    emb = {"a": torch.randn(n, 4), "b": torch.randn(n, 2), "c": torch.randn(n, 7)}
    mixed = mix.embeddings(emb)
    for m, e in emb.items():
        # solve mixed = lam * e_i + (1 - lam) * e_partner for lam, per modality: the same value everywhere
        diff = e - e[mix.partner]
        rows = diff.abs().sum(dim=1) > 1e-6
        lam = ((mixed[m] - e[mix.partner])[rows] / diff[rows]).flatten()
        assert torch.allclose(lam, torch.full_like(lam, mix.lam), atol=1e-4), m


def test_mixup_mixes_labels_with_the_same_lambda():
    out = torch.randn(6, 4)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    mix = Mix(0.3, torch.tensor([1, 0, 3, 2, 5, 4]), {"a": torch.ones(6, dtype=torch.bool)})
    soft = 0.3 * F.one_hot(y, 4).float() + 0.7 * F.one_hot(y[mix.partner], 4).float()
    expected = -(soft * F.log_softmax(out, dim=1)).sum(dim=1).mean()
    assert torch.allclose(mix.loss(F.cross_entropy, out, y), expected, atol=1e-6)
    rows = torch.tensor([True, False, True, True, False, False])
    expected_rows = -(soft[rows] * F.log_softmax(out[rows], dim=1)).sum(dim=1).mean()
    assert torch.allclose(mix.loss(F.cross_entropy, out, y, rows), expected_rows, atol=1e-6)


def test_mixup_keeps_a_modality_only_where_both_samples_have_it():
    torch.manual_seed(0)
    n = 200
    a = torch.arange(n) % 4 != 0
    masks = {"a": a, "b": ~a | (torch.arange(n) % 4 == 1)}  # a only, b only, or both
    mix = draw_mix(masks, alpha=0.5)
    p = mix.partner
    mixed_rows = p != torch.arange(n)
    for m in masks:
        assert torch.equal(mix.masks[m][mixed_rows], (masks[m] & masks[m][p])[mixed_rows])
        assert torch.equal(mix.masks[m][~mixed_rows], masks[m][~mixed_rows])  # unmixed rows keep their masks
    # a sample that shares no modality with its partner is paired with itself, so it stays unmixed:
    # every b-only sample drawn with an a-only partner; far more than a random permutation's ~1 fixed point
    assert (~mixed_rows).sum() > 10
    stacked = torch.stack([mix.masks[m] for m in masks], dim=1)
    assert stacked.any(dim=1).all()
    emb = {m: torch.randn(n, 3) for m in masks}
    mixed = mix.embeddings(emb)
    for m in masks:
        assert (mixed[m][~mix.masks[m]] == 0).all()  # absent rows hold zeros, as the fusion contract says
        assert torch.allclose(mixed[m][~mixed_rows & mix.masks[m]], emb[m][~mixed_rows & mix.masks[m]])


def test_training_mixes_until_the_switch_off_epoch(monkeypatch):
    calls = []
    real = module_mod.draw_mix
    monkeypatch.setattr(module_mod, "draw_mix", lambda masks, alpha: calls.append(alpha) or real(masks, alpha))
    net = make_net()
    mod = MultimodalModule(net, TrainConfig(max_epochs=5, mixup={"alpha": 0.4, "until_epoch": 2}), 0.0)
    mod.train()
    seen = []
    for epoch in range(4):
        monkeypatch.setattr(MultimodalModule, "current_epoch", property(lambda self, e=epoch: e))
        before = len(calls)
        mod.training_step(make_batch(), 0)
        seen.append(len(calls) - before)
    assert seen == [1, 1, 0, 0]
    assert calls == [0.4, 0.4]


def test_mixup_trains_the_net_on_mixed_embeddings(monkeypatch):
    net = make_net()
    mod = MultimodalModule(net, TrainConfig(max_epochs=3, mixup={"alpha": 1.0}), 0.0)
    mod.train()
    net.eval()  # the module trains (mixing on), the net without dropout, so the two forward passes agree
    monkeypatch.setattr(MultimodalModule, "current_epoch", property(lambda self: 0))
    batch = make_batch()
    mix = Mix(0.25, torch.roll(torch.arange(len(batch)), 1), dict(batch.masks))
    loss, out = mod.loss(batch, mix)
    emb = {m: 0.25 * e + 0.75 * e[mix.partner] for m, e in net.embed(batch).items()}
    expected_out = net.head(net.fusion(emb, batch.masks).fused)
    assert torch.allclose(out, expected_out, atol=1e-5)
    expected = 0.25 * F.cross_entropy(out, batch.target) + 0.75 * F.cross_entropy(out, batch.target[mix.partner])
    assert torch.allclose(loss, expected, atol=1e-5)


# --------------------------------------------------------------------------- OGM-GE

def test_modulation_coefficient_matches_hand_computed_values():
    # two modalities: rho_a = 0.9 / 0.6 = 1.5, k_a = 1 - tanh(0.5 * 0.5) = 1 - tanh(0.25) = 0.755081...
    k = modulation_coefficients({"a": 0.9, "b": 0.6}, alpha=0.5)
    assert k["a"] == pytest.approx(1 - math.tanh(0.25)) and k["a"] == pytest.approx(0.755081, abs=1e-6)
    assert k["b"] == 1.0
    # alpha 1, rho = 0.8 / 0.2 = 4: 1 - tanh(3) = 0.004945
    assert modulation_coefficients({"a": 0.2, "b": 0.8}, alpha=1.0)["b"] == pytest.approx(0.0049452, abs=1e-6)
    # balanced: nothing modulated
    assert modulation_coefficients({"a": 0.5, "b": 0.5}, alpha=2.0) == {"a": 1.0, "b": 1.0}
    # three modalities: rho_a = 0.9 / mean(0.3, 0.6) = 2
    k3 = modulation_coefficients({"a": 0.9, "b": 0.3, "c": 0.6}, alpha=0.1)
    assert k3["a"] == pytest.approx(1 - math.tanh(0.1)) and k3["b"] == 1.0 and k3["c"] == 1.0


def test_correct_class_scores_are_mean_true_class_probability():
    proba = {"a": torch.tensor([[0.7, 0.3], [0.2, 0.8], [0.5, 0.5]]), "b": torch.tensor([[0.4, 0.6], [0.9, 0.1], [0.1, 0.9]])}
    masks = {"a": torch.tensor([True, True, False]), "b": torch.tensor([True, True, True])}
    y = torch.tensor([0, 1, 1])
    s = correct_class_scores(proba, masks, y)
    assert s["a"] == pytest.approx((0.7 + 0.8) / 2) and s["b"] == pytest.approx((0.4 + 0.1 + 0.9) / 3)
    mixed = correct_class_scores(proba, masks, y, other_target=torch.tensor([1, 0, 0]), lam=0.25)
    assert mixed["a"] == pytest.approx((0.25 * 0.7 + 0.75 * 0.3 + 0.25 * 0.8 + 0.75 * 0.2) / 2)


def test_modulate_gradients_scales_and_adds_matching_noise():
    p = torch.nn.Parameter(torch.zeros(20000))
    grad = torch.randn(20000) * 3.0
    p.grad = grad.clone()
    modulate_gradients([p], 0.5, noise=False)
    assert torch.allclose(p.grad, 0.5 * grad)
    p.grad = grad.clone()
    torch.manual_seed(0)
    modulate_gradients([p], 0.5, noise=True)
    noise = p.grad - 0.5 * grad
    assert noise.std().item() == pytest.approx(grad.std().item(), rel=0.05)
    p.grad = grad.clone()
    modulate_gradients([p], 1.0, noise=True)
    assert torch.equal(p.grad, grad)


def test_ogm_scales_only_the_dominant_encoders_gradients(monkeypatch):
    """Make 'a' dominant (b's input is zero), then compare a step's gradients with and without modulation."""
    batch = make_batch(n=32)
    batch.inputs["b"] = torch.zeros_like(batch.inputs["b"])
    batch.inputs["a"] = batch.inputs["a"] + 3.0 * torch.nn.functional.one_hot(batch.target, 5).float()
    monkeypatch.setattr(MultimodalModule, "current_epoch", property(lambda self: 0))

    def grads(gm):
        net = make_net()
        net.train(False)  # no dropout: the two runs see the same forward pass
        mod = MultimodalModule(net, TrainConfig(max_epochs=3, gradient_modulation=gm), 0.0)
        for _ in range(15):  # teach the head to read modality a
            loss, _ = mod.loss(batch)
            net.zero_grad()
            loss.backward()
            with torch.no_grad():
                for p in net.parameters():
                    if p.grad is not None:
                        p -= 0.5 * p.grad
        mod.coefficients = {}
        loss, _ = mod.loss(batch)
        net.zero_grad()
        loss.backward()
        mod.on_after_backward()
        return {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}, dict(mod.coefficients)

    plain, none = grads(None)
    assert none == {}
    modulated, k = grads({"alpha": 1.0, "noise": False})
    assert k["b"] == 1.0 and 0.0 < k["a"] < 1.0
    for name, g in plain.items():
        if name.startswith("encoders.a."):
            assert torch.allclose(modulated[name], k["a"] * g, atol=1e-6), name
        else:
            assert torch.allclose(modulated[name], g, atol=1e-6), name


def test_ogm_coefficients_follow_the_epoch_window(monkeypatch):
    mod = MultimodalModule(make_net(), TrainConfig(max_epochs=6, gradient_modulation={"alpha": 1.0, "start_epoch": 1, "until_epoch": 3}), 0.0)
    active = []
    for epoch in range(5):
        monkeypatch.setattr(MultimodalModule, "current_epoch", property(lambda self, e=epoch: e))
        active.append(mod.modulating())
    assert active == [False, True, True, False, False]


# --------------------------------------------------------------------------- auxiliary losses

def test_aux_losses_reach_each_encoder():
    net = make_net()
    batch = make_batch()
    mod = MultimodalModule(net, TrainConfig(max_epochs=2, modality_aux_weight=1.0), 0.0)
    mod.train()
    net.eval()  # no dropout, so the two forward passes agree
    loss, out = mod.loss(batch)
    main = F.cross_entropy(out, batch.target)
    emb = net.embed(batch)
    aux = torch.stack([F.cross_entropy(mod.modality_heads[m](emb[m]), batch.target) for m in "ab"]).mean()
    assert torch.allclose(loss, main + aux, atol=1e-5)
    # the auxiliary part alone sends gradients into every encoder and every auxiliary head
    net.zero_grad()
    (loss - main).backward()
    for m in "ab":
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.encoders[m].parameters()), m
        assert mod.modality_heads[m].weight.grad.abs().sum() > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in net.head.parameters())
    # validation loss is the task's alone; the aux heads are not part of the saved network
    mod.eval()
    val_loss, val_out = mod.loss(batch)
    assert torch.allclose(val_loss, F.cross_entropy(val_out, batch.target), atol=1e-6)
    assert not any(k.startswith("modality_heads") for k in net.state_dict())


# --------------------------------------------------------------------------- config

def test_config_validates_the_switches():
    cfg = TrainConfig(max_epochs=10, mixup={"alpha": 0.2, "until_epoch": 8}, gradient_modulation={"alpha": 0.5}, modality_aux_weight=0.5)
    assert cfg.mixup.until_epoch == 8 and cfg.gradient_modulation.noise is True
    with pytest.raises(ValueError, match="past max_epochs"):
        TrainConfig(max_epochs=5, mixup={"until_epoch": 8})
    with pytest.raises(ValueError, match="greater than start_epoch"):
        TrainConfig(max_epochs=10, gradient_modulation={"start_epoch": 4, "until_epoch": 4})
    with pytest.raises(ValueError, match="greater than 0"):
        TrainConfig(mixup={"alpha": 0})
    from modalfuse.config import parse_config

    with pytest.raises(ConfigError, match="did you mean 'until_epoch'"):
        parse_config({"data": {"dataset": "cub"}, "train": {"mixup": {"alpha": 0.2, "until": 3}}})


def test_modulation_and_mixup_refuse_what_they_cannot_do():
    with pytest.raises(ConfigError, match="token sequences"):
        MultimodalModule(make_net("cross_attention"), TrainConfig(mixup={"alpha": 0.2}), 0.0)
    regression = MultimodalNet.build(MODALITIES, ModelConfig(), INFO, "regression", 1)
    with pytest.raises(ConfigError, match="classification"):
        MultimodalModule(regression, TrainConfig(gradient_modulation={}), 0.0)
    single = MultimodalNet.build(MODALITIES[:1], ModelConfig(), INFO, "classification", 3)
    with pytest.raises(ConfigError, match="two modalities"):
        MultimodalModule(single, TrainConfig(gradient_modulation={}), 0.0)


# --------------------------------------------------------------------------- end to end and probes

def test_fit_with_all_switches_and_probe_each_modality(tmp_path):
    from modalfuse.api import MultimodalModel
    from modalfuse.evaluate.probes import modality_probes

    rng = np.random.default_rng(0)
    n = 240
    y = rng.integers(0, 3, n)
    informative = np.eye(3)[y] * 2.0 + rng.normal(size=(n, 3)) * 0.3
    frame = pd.DataFrame({"a": list(np.c_[informative, rng.normal(size=(n, 2))].astype(np.float32)),
                          "b": list(rng.normal(size=(n, 3)).astype(np.float32)), "label": y})
    train, test = frame.iloc[:180], frame.iloc[180:]
    model = MultimodalModel(
        [{"name": "a", "kind": "vector"}, {"name": "b", "kind": "vector"}], "label",
        {"fusion": {"name": "concat", "dim": 16}},
        {"max_epochs": 12, "batch_size": 32, "lr": 0.01, "progress": False, "seed": 0, "mixup": {"alpha": 0.4, "until_epoch": 9},
         "gradient_modulation": {"alpha": 0.5}, "modality_aux_weight": 0.5},
        cache_dir="none",
    )
    model.fit(train, run_dir=tmp_path)
    assert model.evaluate(test)["accuracy"] > 0.8
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert {"modulation_a", "modulation_b"} <= set(metrics.columns)
    # a carries the label, so a is slowed down; b (noise) is left alone once the model has learnt anything
    assert (metrics["modulation_a"] < 1).all() and (metrics["modulation_b"][1:] == 1).all()
    probes = modality_probes(model, train, test)
    assert set(probes) == {"a", "b"}
    assert probes["a"] > 0.8 and probes["b"] < 0.6  # b is noise: its encoder cannot know the label
    model.save(tmp_path / "model")
    assert model.load(tmp_path / "model").evaluate(test)["accuracy"] == pytest.approx(model.evaluate(test)["accuracy"])


def test_epoch_train_loss_is_the_row_weighted_mean_of_step_losses(tmp_path, monkeypatch):
    from modalfuse import MultimodalModel

    steps: list[tuple[int, float, int]] = []
    real = MultimodalModule.training_step

    def recording(self, batch, batch_idx):
        loss = real(self, batch, batch_idx)
        steps.append((self.current_epoch, float(loss.detach()), len(batch)))
        return loss

    monkeypatch.setattr(MultimodalModule, "training_step", recording)
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": list(rng.normal(size=(70, 4)).astype(np.float32)), "label": rng.integers(0, 2, 70)})
    model = MultimodalModel([{"name": "a", "kind": "vector"}], "label", {"fusion": {"name": "concat", "dim": 8}},
                            {"max_epochs": 2, "batch_size": 32, "val_fraction": 0.0, "progress": False, "seed": 0}, cache_dir="none")
    model.fit(frame, run_dir=tmp_path)
    logged = pd.read_csv(tmp_path / "metrics.csv")["train_loss"].to_numpy()
    for epoch in (0, 1):
        rows = [(loss, n) for e, loss, n in steps if e == epoch]
        assert [n for _, n in rows] == [32, 32, 6]  # the last, short batch counts by its rows
        assert logged[epoch] == pytest.approx(sum(loss * n for loss, n in rows) / 70, rel=1e-5)
