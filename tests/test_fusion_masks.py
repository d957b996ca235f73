"""Presence masks through MultimodalNet: absent modalities never leak, no NaN, samples independent."""
from __future__ import annotations

import pytest
import torch

from modalfuse.config import ModalityConfig, ModelConfig
from modalfuse.data import Batch, featurize, make_preprocessor
from modalfuse.fusion import FUSIONS
from modalfuse.model import MultimodalNet

N = 6
#: every registered fusion (options chosen small), plus variants that take another code path
FUSION_CASES = {
    "concat": ("concat", {}),
    "sum": ("sum", {}),
    "late": ("late", {}),
    "late-learned": ("late", {"combine": "learned"}),
    "early": ("early", {"hidden": 16, "layers": 1}),
    "max": ("max", {}),
    "tensor": ("tensor", {"factor_dim": 3}),
    "low_rank": ("low_rank", {"rank": 2}),
    "attention": ("attention", {"heads": 2}),
    "cross_attention": ("cross_attention", {"heads": 2}),
    "gated": ("gated", {}),
    "squeeze_excite": ("squeeze_excite", {}),
    "squeeze_excite-maps": ("squeeze_excite", {"depths": [0, 1]}),
    "hybrid": ("hybrid", {"inner_dim": 16, "hidden": 8}),
    "hybrid-sum": ("hybrid", {"inner": "sum", "inner_dim": 16, "hidden": 8}),
    "inverse_variance": ("inverse_variance", {"hidden": 8}),
    "evidential": ("evidential", {"hidden": 8}),
}
IDS = sorted(FUSION_CASES)
CORE = ["concat", "sum", "late"]


def test_every_registered_fusion_is_covered() -> None:
    assert {"concat", "sum", "late"} <= set(FUSIONS.names())
    missing = set(FUSIONS.names()) - {f for f, _ in FUSION_CASES.values()}
    assert not missing, f"fusions without mask tests: {sorted(missing)}"


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    """Features for image, audio, text and tabular, built with the real preprocessors from files."""
    from conftest import build_table, modality_specs

    path, frame = build_table(tmp_path_factory.mktemp("masks"), n=N, seed=3)
    specs = modality_specs("image", "audio", "text", "tabular", dim=8)
    specs.append({"name": "words", "kind": "text", "columns": ["text"], "options": {"max_tokens": 8},
                  "encoder": {"name": "text_transformer", "dim": 8, "options": {"embed_dim": 8, "heads": 2, "layers": 1, "max_tokens": 8}}})
    mods = [ModalityConfig.model_validate(s) for s in specs]
    pres = {m.name: make_preprocessor(m) for m in mods}
    feats = featurize(frame, pres, None, None, fit=True, base_dir=path.parent, cache=None)
    assert all(bool(m.all()) for m in feats.masks.values())
    info = {n: p.encoder_info() for n, p in pres.items()}
    return mods, info, feats


def make_net(encoded, case: str) -> MultimodalNet:
    fusion, options = FUSION_CASES[case]
    mods, info, _ = encoded
    torch.manual_seed(0)
    cfg = ModelConfig(fusion={"name": fusion, "dim": 16, "options": options}, head_hidden=8, dropout=0.0)
    net = MultimodalNet.build(mods, cfg, info, "classification", 3).eval()
    with torch.no_grad():  # zero-initialised parameters (missing stand-ins, mixing logits) made non-trivial
        for name, p in net.fusion.named_parameters():
            if torch.all(p == 0) and ("missing" in name or "logit" in name or "mix" in name):
                p.normal_()
    return net


def full_batch(encoded, masks: dict[str, list[bool]] | None = None) -> Batch:
    _, _, feats = encoded
    batch = feats[list(range(N))]
    batch = Batch({k: v.clone() for k, v in batch.inputs.items()}, dict(batch.masks), batch.target, batch.index)
    if masks:
        batch = batch.with_masks({k: torch.tensor(v) for k, v in masks.items()})
    return batch


MIXED = {
    "image": [True, True, False, True, True, False],
    "audio": [True, False, True, True, False, True],
    "text": [False, True, True, True, True, False],
    "words": [True, True, True, False, True, True],
    "tabular": [True, False, True, True, False, False],
}


@pytest.mark.parametrize("case", IDS)
def test_absent_modality_input_changes_nothing(encoded, case) -> None:
    net = make_net(encoded, case)
    batch = full_batch(encoded, MIXED)
    with torch.no_grad():
        before = net(batch).output.clone()
        changed = Batch({k: v.clone() for k, v in batch.inputs.items()}, batch.masks, batch.target, batch.index)
        g = torch.Generator().manual_seed(1)
        for name, mask in MIXED.items():
            x = changed.inputs[name]
            for i, present in enumerate(mask):
                if not present:
                    if x.dtype.is_floating_point:
                        x[i] = torch.randn(x[i].shape, generator=g) * 5
                    elif name == "tabular":
                        x[i] = 0
                    else:
                        x[i] = torch.randint(1, 4, x[i].shape, generator=g)
        after = net(changed).output
    assert torch.equal(before, after)

    # control: changing a *present* modality's input does change that sample's output
    with torch.no_grad():
        changed.inputs["image"][0] = changed.inputs["image"][0].flip(-1).flip(-2) * 3 + 1
        control = net(changed).output
    assert not torch.allclose(control[0], before[0])
    assert torch.equal(control[1:], before[1:])


@pytest.mark.parametrize("case", IDS)
def test_missing_modalities_give_no_nan(encoded, case) -> None:
    net = make_net(encoded, case)
    # MIXED, plus one modality absent from the whole batch
    masks = {**MIXED, "audio": [False] * N}
    batch = full_batch(encoded, masks)
    with torch.no_grad():
        out = net(batch)
    assert torch.isfinite(out.output).all()
    if out.weights is not None:
        assert torch.isfinite(out.weights).all()
        order = net.fusion.modalities
        for j, name in enumerate(order):
            absent = ~torch.tensor(masks[name])
            assert torch.all(out.weights[absent, j] == 0), f"{case}: absent {name} has weight"
        assert torch.all(out.weights >= 0)
        if FUSION_CASES[case][0] == "hybrid":  # the fused prediction's own weight is not listed
            assert torch.all(out.weights.sum(1) < 1)
        else:
            assert torch.allclose(out.weights.sum(1), torch.ones(N), atol=1e-5)

    # gradients stay finite too (training mode, loss on every sample)
    net.train()
    out = net(batch)
    loss = net.head.loss(out.output, torch.tensor([0, 1, 2, 0, 1, 2]))
    loss.backward()
    assert torch.isfinite(loss)
    for n, p in net.named_parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all(), n


@pytest.mark.parametrize("case", IDS)
def test_sample_output_independent_of_batch(encoded, case) -> None:
    net = make_net(encoded, case)
    batch = full_batch(encoded, MIXED)
    with torch.no_grad():
        together = net(batch).output
        for i in range(N):
            alone = Batch({k: v[i : i + 1] for k, v in batch.inputs.items()}, {k: v[i : i + 1] for k, v in batch.masks.items()}, None, batch.index[i : i + 1])
            assert torch.allclose(net(alone).output[0], together[i], atol=1e-5), f"sample {i}"
        # and in a different company: the same sample next to reversed other rows
        order = list(reversed(range(N)))
        shuffled = Batch({k: v[order] for k, v in batch.inputs.items()}, {k: v[order] for k, v in batch.masks.items()}, None, batch.index[order])
        assert torch.allclose(net(shuffled).output, together[order], atol=1e-5)


def test_embed_leaves_absent_rows_zero_and_skips_encoder(encoded) -> None:
    net = make_net(encoded, "concat")
    batch = full_batch(encoded, MIXED)
    seen: dict[str, int] = {}
    hooks = [enc.register_forward_hook(lambda mod, inp, out, name=name: seen.__setitem__(name, inp[0].shape[0])) for name, enc in net.encoders.items()]
    try:
        with torch.no_grad():
            emb = net.embed(batch)
    finally:
        for h in hooks:
            h.remove()
    for name, mask in MIXED.items():
        assert seen[name] == sum(mask), f"{name} encoder ran on absent rows"
        absent = ~torch.tensor(mask)
        assert torch.all(emb[name][absent] == 0)
        assert torch.all(emb[name][~absent].abs().sum(1) > 0)


def test_tokens_are_invalid_for_absent_samples(encoded) -> None:
    net = make_net(encoded, "cross_attention")
    batch = full_batch(encoded, MIXED)
    with torch.no_grad():
        tokens = net.fusion.encode(net.encoders, batch)
    for name, mask in MIXED.items():
        toks, valid = tokens[name]
        absent = ~torch.tensor(mask)
        assert not valid[absent].any() and torch.all(toks[absent] == 0), name
        assert valid[~absent].any(dim=1).all(), name
