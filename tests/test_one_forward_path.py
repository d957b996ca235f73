"""Every fusion × de-duplicated inputs × mixup × modality dropout, through the one forward protocol.

Each registered fusion is trained end to end on a small image + image + tabular table whose images
repeat (so both image modalities are stored de-duplicated), with mixup and modality dropout on;
fusions that combine token sequences refuse mixup with a config error and train without it. The
fitted model then predicts through ``predict_frame``, through the server's engine (same numbers)
and, where the fusion exports, through ONNX (same numbers).
"""
from __future__ import annotations

import numpy as np
import pytest

from modalfuse import MultimodalModel
from modalfuse.data.entities import Indexed
from modalfuse.errors import ConfigError
from modalfuse.fusion import FUSIONS

TRAIN = {"max_epochs": 1, "batch_size": 8, "lr": 3e-3, "patience": 0, "seed": 0, "progress": False, "val_fraction": 0.0,
         "threads": 1, "modality_dropout": 0.2, "mixup": {"alpha": 0.4}}
CASES = [(name, {}) for name in FUSIONS.names()] + [("squeeze_excite", {"depths": [0, 1]})]
#: fusions whose forward pass the TorchScript ONNX exporter cannot express (data-dependent shapes in their parts)
NO_ONNX: set[str] = set()


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    from conftest import build_table

    folder = tmp_path_factory.mktemp("fwd")
    _, frame = build_table(folder, n=24, seed=5)
    frame = frame.copy()
    # six distinct images over 24 rows (the label follows the row's parity, and so does image i % 6)
    frame["image"] = [str(folder / f"img/{i % 6}.png") for i in range(len(frame))]
    return frame


def specs():
    image = {"kind": "image", "columns": ["image"], "options": {"size": [12, 12], "channels": 1}, "dedupe": True}
    return [
        {**image, "name": "photo", "encoder": {"dim": 8, "options": {"widths": [4, 8], "dropout": 0.0}}},
        {**image, "name": "thumb", "encoder": {"dim": 8, "options": {"widths": [4, 4], "dropout": 0.0}}},
        {"name": "record", "kind": "tabular", "options": {"numeric": ["x1", "x2"], "categorical": ["color"]},
         "encoder": {"dim": 8, "options": {"hidden": 8, "dropout": 0.0}}},
    ]


def fit(name: str, options: dict, frame):
    model_cfg = {"fusion": {"name": name, "dim": 8, "options": options}, "dropout": 0.0}
    if name == "tensor":
        model_cfg["fusion"]["options"] = {"factor_dim": 2}
    model = MultimodalModel(specs(), "label", model=model_cfg, train=TRAIN)
    if FUSIONS.get(name).consumes == "tokens":
        with pytest.raises(ConfigError, match="mixup"):
            model.fit(frame)
        model = MultimodalModel(specs(), "label", model=model_cfg, train={**TRAIN, "mixup": None})
    return model.fit(frame)


@pytest.mark.parametrize("name,options", CASES, ids=[f"{n}{'-maps' if o else ''}" for n, o in CASES])
def test_fusion_trains_predicts_serves_and_exports(name, options, frame, tmp_path):
    model = fit(name, options, frame)
    features = model.featurize(frame)
    assert isinstance(features.inputs["photo"], Indexed) and len(features.inputs["photo"].values) == 6
    predicted = model.predict_frame(frame)
    assert len(predicted) == len(frame) and set(predicted["prediction"]) <= {"cat", "dog"}
    proba = predicted[["proba_cat", "proba_dog"]].to_numpy()
    assert np.isfinite(proba).all() and np.allclose(proba.sum(1), 1, atol=1e-5)

    # the server's engine answers with the model's own numbers
    from modalfuse.serve.engine import Engine, Encoded

    engine = Engine(model)
    dense = features.expanded()
    enc = Encoded({k: v.numpy() for k, v in dense.inputs.items()}, {k: v.numpy() for k, v in dense.masks.items()})
    served = engine.predict(enc)
    assert [r["prediction"] for r in served] == list(predicted["prediction"])
    assert np.allclose([r["probabilities"]["dog"] for r in served], predicted["proba_dog"], atol=1e-5)

    if name in NO_ONNX:
        return
    pytest.importorskip("onnxruntime")
    from modalfuse.serve.onnx import export_onnx

    info = export_onnx(model, tmp_path / "m.onnx")
    assert info["parity"]["max_abs_diff"] < 1e-4
