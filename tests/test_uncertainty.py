"""Dempster–Shafer combination, inverse-variance weighting, evidential and Gaussian heads, calibration."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from modalfuse.evaluate.calibration import brier_score, expected_calibration_error, fit_temperature, negative_log_likelihood, reliability_diagram
from modalfuse.fusion.evidential import combine, combine_two, opinion
from modalfuse.fusion.inverse_variance import InverseVarianceFusion
from modalfuse.heads.evidential import dirichlet_loss
from modalfuse.heads.gaussian import GaussianHead


def test_dempster_shafer_matches_hand_computation():
    # view 1: alpha [3, 1] -> b = [0.5, 0], u = 0.5; view 2: alpha [1, 2] -> b = [0, 1/3], u = 2/3
    # conflict C = 0.5 * 1/3 = 1/6; b = ([1/3, 0] + [0, 1/6]) / (5/6) = [0.4, 0.2]; u = (1/3) / (5/6) = 0.4
    a1, a2 = torch.tensor([[3.0, 1.0]]), torch.tensor([[1.0, 2.0]])
    fused = combine_two(a1, a2)
    b, u = opinion(fused)
    torch.testing.assert_close(b, torch.tensor([[0.4, 0.2]]))
    torch.testing.assert_close(u, torch.tensor([0.4]))
    torch.testing.assert_close(fused, torch.tensor([[3.0, 2.0]]))  # S = K/u = 5, e = b S = [2, 1]


def test_dempster_shafer_is_symmetric_and_vacuous_opinion_is_neutral():
    g = torch.Generator().manual_seed(0)
    a1, a2 = torch.rand(4, 5, generator=g) * 10 + 1, torch.rand(4, 5, generator=g) * 10 + 1
    torch.testing.assert_close(combine_two(a1, a2), combine_two(a2, a1))
    torch.testing.assert_close(combine([a1, torch.ones_like(a1)]), a1)
    b, u = opinion(combine([a1, a2]))
    torch.testing.assert_close(b.sum(1) + u, torch.ones(4))
    # agreeing evidence lowers uncertainty below either view's
    assert torch.all(u < torch.minimum(opinion(a1)[1], opinion(a2)[1]))


def test_inverse_variance_formula():
    preds = torch.tensor([[[1.0], [3.0]], [[1.0], [3.0]]])
    variances = torch.tensor([[1.0, 4.0], [1.0, 4.0]])
    presence = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    fused, fused_var, weights = InverseVarianceFusion.combine(preds, variances, presence)
    torch.testing.assert_close(weights, torch.tensor([[0.8, 0.2], [1.0, 0.0]]))
    torch.testing.assert_close(fused[:, 0], torch.tensor([1.4, 1.0]))
    torch.testing.assert_close(fused_var, torch.tensor([0.8, 1.0]))


def test_inverse_variance_mc_combine_adds_epistemic_variance():
    fusion = InverseVarianceFusion({"a": 2, "b": 2}, out_dim=2, task="regression")
    masks = {"a": torch.tensor([True]), "b": torch.tensor([True])}
    # branch a: stable predictions, log-var 0; branch b: predictions that vary across passes, log-var 0
    samples = [{"a": torch.tensor([[1.0, 0.0]]), "b": torch.tensor([[v, 0.0]])} for v in (0.0, 4.0)]
    out, weights = fusion.mc_combine(samples, masks)
    # a: total variance 1 + 0; b: 1 + var([0, 4]) = 1 + 8 -> weights 9/10 and 1/10
    torch.testing.assert_close(weights, torch.tensor([[0.9, 0.1]]))
    torch.testing.assert_close(out[:, 0], torch.tensor([0.9 * 1.0 + 0.1 * 2.0]))


def test_dirichlet_loss_prefers_evidence_for_the_true_class():
    target = torch.tensor([0])
    right, wrong = torch.tensor([[20.0, 1.0, 1.0]]), torch.tensor([[1.0, 20.0, 1.0]])
    assert dirichlet_loss(right, target, 1.0) < dirichlet_loss(torch.ones(1, 3), target, 1.0) < dirichlet_loss(wrong, target, 1.0)
    # the KL term only penalises misleading evidence: none for the true class
    assert dirichlet_loss(right, target, 1.0) == pytest.approx(float(dirichlet_loss(right, target, 0.0)))
    assert dirichlet_loss(wrong, target, 1.0) > dirichlet_loss(wrong, target, 0.0)


def test_gaussian_head_learns_variance():
    head = GaussianHead(None, 0, 1, 0.0)
    y = torch.zeros(4)
    small = torch.tensor([[1.0, 0.0]] * 4)   # error 1 with variance 1: NLL minimal
    tiny = torch.tensor([[1.0, float(np.log(0.01))]] * 4)   # overconfident
    assert head.loss(small, y) < head.loss(tiny, y)
    torch.testing.assert_close(head.uncertainty(small), torch.ones(4))


def test_calibration_metrics_by_hand(tmp_path):
    proba = np.tile([[0.9, 0.1]], (10, 1))
    y = np.array([0] * 8 + [1] * 2)
    assert expected_calibration_error(proba, y) == pytest.approx(0.1)
    assert brier_score(proba, y) == pytest.approx((8 * 0.02 + 2 * 1.62) / 10)
    assert negative_log_likelihood(proba, y) == pytest.approx(-(8 * np.log(0.9) + 2 * np.log(0.1)) / 10)
    assert reliability_diagram(proba, y, tmp_path / "rel.png").stat().st_size > 1000


def test_temperature_scaling_recovers_overconfidence():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4000, 4)) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(4, p=row) for row in p])
    assert fit_temperature(logits * 3, y) == pytest.approx(3.0, rel=0.1)


def test_beta_nll_weights_each_sample_by_its_detached_variance() -> None:
    import torch.nn.functional as F

    from modalfuse.heads import GaussianHead

    out = torch.tensor([[1.0, 0.0], [2.0, 1.0], [0.5, -1.0]], requires_grad=True)
    target = torch.tensor([1.5, 0.0, 0.5])
    variance = out[:, 1].exp()
    plain = GaussianHead(None, 0, 1, 0.0).loss(out, target)
    assert torch.allclose(plain, F.gaussian_nll_loss(out[:, 0], target, variance, full=True))
    beta = GaussianHead(None, 0, 1, 0.0, beta=0.5).loss(out, target)
    per_sample = F.gaussian_nll_loss(out[:, 0], target, variance, full=True, reduction="none")
    assert torch.allclose(beta, (per_sample * variance.detach() ** 0.5).mean())
    (grad_beta,) = torch.autograd.grad(beta, out)
    (grad_plain,) = torch.autograd.grad(F.gaussian_nll_loss(out[:, 0], target, variance, full=True, reduction="none"), out, grad_outputs=variance.detach() ** 0.5 / 3)
    assert torch.allclose(grad_beta, grad_plain), "the weight is a constant: no gradient flows through it"
