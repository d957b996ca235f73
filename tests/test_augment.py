"""Train-time augmentation: per-kind operations, seeded per batch (same with any number of workers), off at prediction."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from modalfuse.augment import AUGMENTS, augmenters
from modalfuse.config import ModalityConfig
from modalfuse.data import TargetEncoder, featurize, make_preprocessor
from modalfuse.data.disk import featurize_disk
from modalfuse.data.loader import make_loader

from test_disk_storage import MODALITIES, _table

AUGMENTED = [
    {**MODALITIES[0], "augment": {"crop_scale": [0.5, 1.0], "flip": 0.5, "brightness": 0.3, "contrast": 0.3}},
    {**MODALITIES[1], "augment": {"shift": 0.2, "gain_db": 6, "noise": 0.01, "time_masks": 2, "freq_masks": 2}},
    {**MODALITIES[2], "augment": {"noise": 0.2}},
]


def _features(tmp_path, disk=False):
    mods = [ModalityConfig.model_validate(m) for m in AUGMENTED]
    pres = {m.name: make_preprocessor(m) for m in mods}
    path = _table(tmp_path)
    if disk:
        feats, _ = featurize_disk(path, pres, TargetEncoder("classification"), "label", fit=True, chunk_size=16)
    else:
        import pandas as pd

        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
        feats = featurize(frame, pres, TargetEncoder("classification"), "label", fit=True, base_dir=tmp_path)
    return feats, augmenters(mods, pres)


def _values(batch):
    return {k: (v.values if hasattr(v, "values") and not isinstance(v, torch.Tensor) else v).clone() for k, v in batch.inputs.items()}


def _epochs(loader, n=2):
    return [[(b.index.tolist(), _values(b)) for b in loader] for _ in range(n)]


def test_augmentation_seeded_and_independent_of_workers(tmp_path):
    feats, aug = _features(tmp_path, disk=True)
    runs = {w: _epochs(make_loader(feats, 16, True, seed=5, workers=w, augment=aug)) for w in (0, 2)}
    other = _epochs(make_loader(feats, 16, True, seed=6, workers=0, augment=aug), 1)
    for (i0, v0), (i2, v2) in zip(sum(runs[0], []), sum(runs[2], [])):
        assert i0 == i2
        for name in v0:
            assert torch.equal(v0[name], v2[name])
    plain = make_loader(feats, 16, True, seed=5, workers=0)
    first_plain = next(iter(plain))
    idx, augmented = runs[0][0][0]
    assert first_plain.index.tolist() == idx
    for name in ("image", "audio", "record"):  # every modality changed, not its shape
        raw = _values(first_plain)[name]
        assert raw.shape == augmented[name].shape and not torch.allclose(raw, augmented[name])
    assert not torch.equal(other[0][0][1]["image"], augmented["image"])  # another seed, other draws
    # epoch 2 draws afresh for the same rows
    by_rows = {tuple(sorted(i)): v for i, v in runs[0][1]}
    assert all(not torch.equal(v["audio"], by_rows.get(tuple(sorted(i)), {"audio": v["audio"] + 1})["audio"]) for i, v in runs[0][0][:1])


def test_tabular_noise_keeps_missing_flags_and_categories(tmp_path):
    feats, aug = _features(tmp_path)
    x = feats[torch.arange(len(feats))].inputs["record"]
    y = aug["record"](x, torch.Generator().manual_seed(0))
    assert torch.equal(y[:, 1:], x[:, 1:])  # flag and category code untouched
    missing = x[:, 1] == 1
    assert torch.equal(y[missing, 0], x[missing, 0]) and not torch.allclose(y[~missing, 0], x[~missing, 0])


def test_text_token_dropout_keeps_padding():
    cfg = ModalityConfig.model_validate({"name": "t", "kind": "text", "augment": {"token_dropout": 0.5}})
    pre = make_preprocessor(cfg)
    pre.fit(["a b c d e f g h", "i j k"])
    ids = torch.from_numpy(np.stack([pre.encode("a b c d e f g h"), pre.encode("i j k")]))
    out = augmenters([cfg], {"t": pre})["t"](ids, torch.Generator().manual_seed(1))
    assert torch.equal(out[ids == 0], ids[ids == 0])
    changed = out != ids
    assert changed.any() and (out[changed] == 1).all()


def test_augment_config_is_checked():
    with pytest.raises(ValueError, match="augment.*did you mean .flip"):
        ModalityConfig.model_validate({"name": "x", "kind": "image", "augment": {"flipp": 0.5}})
    with pytest.raises(ValueError, match="no augmentation"):
        ModalityConfig.model_validate({"name": "s", "kind": "sequence", "augment": {"noise": 0.1}})
    assert set(AUGMENTS.names()) >= {"image", "audio", "text", "tabular", "vector"}


def test_augmentation_is_off_at_prediction(tmp_path):
    from modalfuse import MultimodalModel

    path = _table(tmp_path, n=40)
    model = MultimodalModel(AUGMENTED, "label", model={"fusion": {"name": "concat", "dim": 16}},
                            train={"max_epochs": 1, "batch_size": 16, "progress": False}, workers=0)
    model.fit(path)
    assert model.featurize(path).augment is None
    a, b = model.predict_frame(path), model.predict_frame(path)
    probs = [c for c in a.columns if c.startswith("proba_")]
    assert np.array_equal(a[probs].to_numpy(), b[probs].to_numpy())
    feats = model.featurize(path)
    with torch.no_grad():
        direct = torch.softmax(model.net(feats[torch.arange(len(feats))]).output, dim=1).numpy()
    np.testing.assert_allclose(a[probs].to_numpy(), direct, atol=1e-6)
