"""Configuration: unknown keys and names are refused with a 'did you mean' hint that names the key."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from modalfuse import ConfigError, MultimodalModel, load_config
from modalfuse.config import Config, ModalityConfig, parse_config
from modalfuse.encoders import build_encoder
from modalfuse.fusion import FUSIONS

BASE = {"data": {"train": "t.csv", "target": "label"}}


def _error(data: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return str(info.value)


@pytest.mark.parametrize(
    "data,key,suggestion",
    [
        ({"data": {"train": "t.csv", "targt": "y"}}, "data.targt", "target"),
        ({**BASE, "modalites": []}, "modalites", "modalities"),
        ({**BASE, "train": {"max_epoch": 3}}, "train.max_epoch", "max_epochs"),
        ({**BASE, "model": {"fusion": {"nmae": "sum"}}}, "model.fusion.nmae", "name"),
        ({**BASE, "model": {"head_hiden": 3}}, "model.head_hiden", "head_hidden"),
        ({**BASE, "modalities": [{"name": "p", "kind": "image", "colums": ["a"]}]}, "modalities.0.colums", "columns"),
        ({**BASE, "modalities": [{"name": "p", "kind": "image", "encoder": {"dimm": 3}}]}, "modalities.0.encoder.dimm", "dim"),
    ],
)
def test_unknown_key_did_you_mean(data, key, suggestion) -> None:
    text = _error(data)
    assert f"{key}: unknown key" in text
    assert f"did you mean {suggestion!r}?" in text
    assert "allowed:" in text


@pytest.mark.parametrize(
    "modality,key,suggestion",
    [
        ({"name": "p", "kind": "image", "options": {"sise": [8, 8]}}, "sise", "size"),
        ({"name": "t", "kind": "tabular", "options": {"numerc": ["a"]}}, "numerc", "numeric"),
        ({"name": "a", "kind": "audio", "options": {"sample_rat": 8000}}, "sample_rat", "sample_rate"),
    ],
)
def test_unknown_kind_option_did_you_mean(modality, key, suggestion) -> None:
    """A kind's options are its own typed model: the error names the modality, the kind and the closest option."""
    text = _error({**BASE, "modalities": [modality]})
    assert f"modalities.{modality['name']}.options: kind {modality['kind']!r} has no option {key!r}; did you mean {suggestion!r}?" in text


def test_unknown_key_without_close_match_lists_allowed() -> None:
    text = _error({**BASE, "zzzzqqq": 1})
    assert "unknown key 'zzzzqqq'" in text and "did you mean" not in text
    assert "allowed: data, modalities, model, train, run_dir" in text


@pytest.mark.parametrize(
    "data,key",
    [
        ({**BASE, "train": {"max_epochs": "many"}}, "train.max_epochs"),
        ({**BASE, "train": {"lr": -1}}, "train.lr"),
        ({**BASE, "model": {"dropout": "high"}}, "model.dropout"),
        ({**BASE, "data": {"train": "t.csv", "on_error": "ignore"}}, "data.on_error"),
        ({**BASE, "modalities": [{"name": "p", "kind": "image", "options": {"channels": 2}}]}, "modalities.p.options.channels"),
        ({**BASE, "modalities": [{"name": "p", "kind": "picture"}]}, "modalities.p.kind"),
        ({**BASE, "modalities": "image"}, "modalities"),
    ],
)
def test_wrong_type_names_the_key(data, key) -> None:
    text = _error(data)
    assert f"config: {key}: " in text


def test_semantic_errors() -> None:
    assert "give either data.dataset" in _error({"data": {"target": "y"}})
    assert "repeated: ['p']" in _error({**BASE, "modalities": [{"name": "p", "kind": "image"}, {"name": "p", "kind": "audio"}]})
    assert "options are for kind 'audio'" in _error({**BASE, "modalities": [{"name": "p", "kind": "image", "options": {"kind": "audio"}}]})


def test_modality_defaults() -> None:
    cfg = parse_config({**BASE, "modalities": [
        {"name": "photo", "kind": "image"},
        {"name": "rec", "kind": "tabular", "options": {"numeric": ["a"], "categorical": ["b"]}},
        {"name": "t", "kind": "text", "options": {"pretrained": "minilm"}},
        {"name": "v", "kind": "vector", "columns": ["v1", "v2"]},
    ]})
    photo, rec, text, vec = cfg.modalities
    assert photo.columns == ["photo"] and photo.encoder.name == "image_cnn" and photo.options.size == (32, 32)
    assert rec.columns == ["a", "b"] and rec.encoder.name == "tabular_mlp"
    assert text.encoder.name == "pretrained_text"
    assert vec.encoder.name == "vector_mlp" and vec.columns == ["v1", "v2"]


def test_load_config_yaml(tmp_path: Path) -> None:
    folder = tmp_path / "cfg"
    folder.mkdir()
    path = folder / "c.yaml"
    path.write_text(yaml.safe_dump({"data": {"train": "train.csv", "test": "/abs/test.csv", "target": "y"}, "modalities": [{"name": "x", "kind": "vector"}]}))
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    assert cfg.data.train == str(folder / "train.csv"), "relative tables resolve against the config's folder"
    assert cfg.data.test == "/abs/test.csv"

    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(tmp_path / "list.yaml")
    typo = tmp_path / "typo.yaml"
    typo.write_text("data: {train: t.csv}\ntrian: {max_epochs: 2}\n")
    with pytest.raises(ConfigError, match=r"typo\.yaml: trian: unknown key 'trian'; did you mean 'train'\?"):
        load_config(typo)


# --------------------------------------------------------------------------- names resolved in the registries

def test_unknown_encoder_and_fusion_names() -> None:
    with pytest.raises(ConfigError, match=r"unknown encoder 'image_cnm'; did you mean 'image_cnn'\?"):
        build_encoder("image_cnm", 8, {"in_channels": 1}, {})
    with pytest.raises(ConfigError, match=r"unknown fusion 'concatt'; did you mean 'concat'\?"):
        FUSIONS.get("concatt")
    with pytest.raises(ConfigError, match=r"no option 'widht'; did you mean 'widths'\?"):
        build_encoder("image_cnn", 8, {"in_channels": 1}, {"widht": [4]}, where="modalities.photo.encoder")
    with pytest.raises(ConfigError, match=r"model\.fusion\.options: fusion 'late' has no option 'combin'; did you mean 'combine'\?"):
        FUSIONS.create("late", {"combin": "mean"}, "model.fusion", in_dims={"a": 4}, out_dim=2)


TABLE = pd.DataFrame({"a": [float(i) for i in range(12)], "y": ["p", "q"] * 6})


@pytest.mark.parametrize(
    "modality,model,pattern",
    [
        ({"encoder": {"name": "tabular_mpl"}}, None, r"unknown encoder 'tabular_mpl'; did you mean 'tabular_mlp'\?"),
        ({}, {"fusion": {"name": "sums"}}, r"unknown fusion 'sums'; did you mean 'sum'\?"),
        ({"encoder": {"options": {"hiden": 8}}}, None, r"modalities\.t\.encoder\.options: encoder 'tabular_mlp' has no option 'hiden'; did you mean 'hidden'\?"),
        ({}, {"fusion": {"name": "late", "options": {"hiden": 8}}}, r"model\.fusion\.options: fusion 'late' has no option 'hiden'; did you mean 'hidden'\?"),
    ],
)
def test_model_names_checked_before_training(modality, model, pattern) -> None:
    """Unknown names fail when the estimator is built; unknown options at the latest before training."""
    mod = {"name": "t", "kind": "tabular", "columns": ["a"], **modality}
    estimator = None
    with pytest.raises(ConfigError, match=pattern):
        estimator = MultimodalModel([mod], "y", model=model, train={"progress": False, "max_epochs": 1, "val_fraction": 0.5})
        estimator.fit(TABLE)
    assert estimator is None or estimator.net is None


def test_tabular_columns_must_be_listed() -> None:
    from modalfuse.data import make_preprocessor

    cfg = ModalityConfig.model_validate({"name": "t", "kind": "tabular", "columns": ["b"], "options": {"numeric": ["a"]}})
    with pytest.raises(ConfigError, match=r"modalities\.t: columns \['a'\]"):
        make_preprocessor(cfg)


@pytest.mark.parametrize(
    "kwargs,key,suggestion",
    [
        ({"modalities": [{"name": "t", "kind": "tabular", "optons": {}}]}, "optons", "options"),
        ({"modalities": [{"name": "t", "kind": "tabular"}], "train": {"max_epoch": 2}}, "max_epoch", "max_epochs"),
        ({"modalities": [{"name": "t", "kind": "tabular"}], "model": {"fusion": {"name": "sum", "dimm": 3}}}, "dimm", "dim"),
    ],
)
def test_estimator_dict_config_errors_are_config_errors(kwargs, key, suggestion) -> None:
    """MultimodalModel takes the same config sections as dicts: a typo there is a ConfigError with a hint too."""
    with pytest.raises(ConfigError) as info:
        MultimodalModel(target="y", **kwargs)
    assert f"unknown key {key!r}; did you mean {suggestion!r}?" in str(info.value)
