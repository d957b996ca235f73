"""Every registered fusion: output shape for 1–8 modalities, gradients everywhere, masks respected."""
from __future__ import annotations

import pytest
import torch

from modalfuse.cli import main
from modalfuse.config import ModalityConfig, ModelConfig
from modalfuse.data.batch import Batch
from modalfuse.errors import ConfigError
from modalfuse.fusion import FUSIONS
from modalfuse.model import MultimodalNet

METHODS = FUSIONS.names()
EXPECTED = {"concat", "sum", "max", "early", "late", "tensor", "low_rank", "attention", "cross_attention", "gated", "squeeze_excite", "hybrid"}


def build(method: str, n_modalities: int, options: dict | None = None) -> MultimodalNet:
    mods = [ModalityConfig(name=f"m{i}", kind="vector", encoder={"dim": 6}) for i in range(n_modalities)]
    info = {m.name: {"input_dim": 5} for m in mods}
    if method == "tensor" and options is None:
        options = {"factor_dim": 2}
    return MultimodalNet.build(mods, ModelConfig(fusion={"name": method, "dim": 12, "options": options or {}}, dropout=0.0), info, "classification", 3)


def batch(n_modalities: int, b: int = 12, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    inputs = {f"m{i}": torch.randn(b, 5, generator=g) for i in range(n_modalities)}
    # every modality is missing for some rows and present for others; row 0 has all of them
    masks = {f"m{i}": (torch.arange(b) + i) % 3 != 1 for i in range(n_modalities)}
    for m in masks.values():
        m[0] = True
    return Batch(inputs, masks, torch.randint(0, 3, (b,), generator=g), torch.arange(b))


def test_registry_lists_every_method_with_a_description(capsys):
    assert EXPECTED <= set(METHODS)
    assert main(["fusions"]) == 0
    out = capsys.readouterr().out
    for name in EXPECTED:
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert len(line.split(None, 1)[1]) > 20


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_output_shape(method, n):
    net = build(method, n)
    out = net(batch(n))
    assert out.output.shape == (12, 3)
    assert torch.isfinite(out.output).all()
    if out.weights is not None:
        assert out.weights.shape == (12, n)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n", [3, 5])
def test_every_parameter_gets_a_gradient(method, n):
    torch.manual_seed(0)
    net = build(method, n)
    b = batch(n)
    out = net(b)
    loss = net.head.loss(out.output, b.target) + sum(net.head.loss(p, b.target) for p in out.aux.values())
    loss.backward()
    dead = [name for name, p in net.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert dead == []


@pytest.mark.parametrize("method", METHODS)
def test_masked_modality_input_changes_nothing(method):
    torch.manual_seed(0)
    net = build(method, 3).eval()
    b = batch(3)
    changed = {k: v.clone() for k, v in b.inputs.items()}
    for name, mask in b.masks.items():
        changed[name][~mask] = torch.randn_like(changed[name][~mask]) * 100
    with torch.no_grad():
        before = net(b).output
        after = net(Batch(changed, b.masks, b.target, b.index)).output
    torch.testing.assert_close(before, after)


@pytest.mark.parametrize("method", METHODS)
def test_present_modality_input_changes_output(method):
    """The mask test above would pass for a fusion that ignored its inputs; this one would not."""
    torch.manual_seed(0)
    net = build(method, 3).eval()
    b = batch(3)
    changed = {k: v.clone() for k, v in b.inputs.items()}
    changed["m0"][0] += 3.0
    with torch.no_grad():
        assert not torch.allclose(net(b).output[0], net(Batch(changed, b.masks, b.target, b.index)).output[0])


def test_tensor_fusion_refuses_oversized_product():
    with pytest.raises(ConfigError, match=r"outer product of 1,771,561 features.*low_rank"):
        build("tensor", 6, {"factor_dim": 10})


def test_tensor_fusion_output_size_is_product_of_dims_plus_one():
    net = build("tensor", 3, {"factor_dim": 4})
    assert net.fusion.size == 5**3


def test_low_rank_factors_are_registered_parameters():
    net = build("low_rank", 3, {"rank": 5})
    names = {n for n, _ in net.fusion.named_parameters()}
    assert {"factors.m0", "factors.m1", "factors.m2", "rank_weights", "bias"} <= names
    assert net.fusion.factors["m0"].shape == (5, 7, 12)


def test_squeeze_excite_between_cnn_feature_maps():
    torch.manual_seed(0)
    mods = [
        ModalityConfig(name="img", kind="image", encoder={"dim": 8, "options": {"widths": [4, 8, 8]}}),
        ModalityConfig(name="aud", kind="audio", encoder={"dim": 8, "options": {"widths": [4, 8, 8]}}),
    ]
    info = {"img": {"in_channels": 1}, "aud": {"sample_rate": 8000, "length": 2000}}
    cfg = ModelConfig(fusion={"name": "squeeze_excite", "dim": 8, "options": {"depths": [1, 2]}}, dropout=0.0)
    net = MultimodalNet.build(mods, cfg, info, "classification", 3)
    assert set(net.fusion.stage_mmtm) == {"1", "2"}
    inputs = {"img": torch.randn(6, 1, 16, 16), "aud": torch.randn(6, 2000)}
    masks = {"img": torch.tensor([1, 1, 0, 1, 0, 1], dtype=torch.bool), "aud": torch.tensor([1, 0, 1, 1, 1, 0], dtype=torch.bool)}
    b = Batch(inputs, masks, torch.randint(0, 3, (6,)), torch.arange(6))
    out = net(b).output
    net.head.loss(out, b.target).backward()
    gate = net.fusion.stage_mmtm["1"].excite["img"].weight
    assert gate.grad is not None and torch.any(gate.grad != 0)
    # the image of sample 3 changes the audio branch's feature maps through the gates
    net.eval()
    changed = {"img": inputs["img"].clone(), "aud": inputs["aud"]}
    changed["img"][3] += 1.0
    with torch.no_grad():
        emb_a = net.fusion.encode(net.encoders, b)["aud"][3]
        emb_b = net.fusion.encode(net.encoders, Batch(changed, masks, b.target, b.index))["aud"][3]
    assert not torch.allclose(emb_a, emb_b)
