"""Adding a kind, an encoder, a fusion and a head: in the user's own code, or from an installed plugin package.

In both cases the new components are registered with their registry's decorator and nothing else in
modalfuse is touched; they are then named in a config, validated with their typed options, trained,
saved, loaded and used for prediction like the built-in ones.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from modalfuse import MultimodalModel
from modalfuse.encoders import ENCODERS, Encoder
from modalfuse.errors import ConfigError
from modalfuse.fusion import FUSIONS, Fusion, FusionOutput
from modalfuse.heads import HEADS
from modalfuse.heads.regression import RegressionHead
from modalfuse.kinds import KINDS, KindOptions, Preprocessor
from modalfuse.options import PosInt

PLUGIN = Path(__file__).parent / "toy_plugin"


def toy_frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """Three classes: the class shows in the digit string (its most frequent digit) and, noisily, in a vector."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    codes = ["".join(str(d) for d in np.where(rng.random(8) < 0.6, 3 * y, rng.integers(0, 10, 8))) for y in labels]
    vectors = [rng.normal(y, 1.0, 4).astype(np.float32) for y in labels]
    return pd.DataFrame({"code": codes, "vec": vectors, "label": [f"c{y}" for y in labels]})


# ------------------------------------------------------------------------------ in the user's own code

class WordLengthOptions(KindOptions):
    max_words: PosInt = 4


class WordLengths(Preprocessor):
    """Lengths of the first ``max_words`` words of a text."""

    Options = WordLengthOptions
    default_encoder = "intree_mlp"

    def _decode(self, cells, base_dir):
        return str(cells[0])

    def encode(self, value: str) -> np.ndarray:
        lengths = [len(w) for w in value.split()][: self.options.max_words]
        return np.asarray(lengths + [0] * (self.options.max_words - len(lengths)), np.float32)

    def empty(self) -> np.ndarray:
        return np.zeros(self.options.max_words, np.float32)

    def encoder_info(self) -> dict[str, Any]:
        return {"input_dim": self.options.max_words}


class InTreeMLP(Encoder):
    """Two linear layers."""

    kinds = ("word_lengths",)

    def __init__(self, dim: int, info: dict[str, Any], hidden: PosInt = 8) -> None:
        super().__init__(dim, info)
        self.net = nn.Sequential(nn.Linear(info["input_dim"], hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class InTreeMean(Fusion):
    """Mean of the present embeddings, projected."""

    def __init__(self, in_dims: dict[str, int], out_dim: int, dropout: float = 0.0) -> None:
        super().__init__(in_dims, out_dim, dropout)
        self.proj = nn.ModuleDict({m: nn.Linear(d, out_dim) for m, d in in_dims.items()})

    def forward(self, embeddings, masks) -> FusionOutput:
        from modalfuse.fusion import masked_mean

        stacked = torch.stack([self.proj[m](embeddings[m]) for m in self.modalities], dim=1)
        return FusionOutput(masked_mean(stacked, self.stack_masks(masks)))


class InTreeHuber(RegressionHead):
    """Regression with the Huber loss."""

    def __init__(self, in_dim, hidden: int, n_outputs: int, dropout: float, delta: float = 1.0) -> None:
        super().__init__(in_dim, hidden, n_outputs, dropout)
        self.delta = delta

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.huber_loss(out[:, 0], target.float(), delta=self.delta)


@pytest.fixture
def in_tree():
    KINDS.register("word_lengths")(WordLengths)
    ENCODERS.register("intree_mlp")(InTreeMLP)
    FUSIONS.register("intree_mean")(InTreeMean)
    HEADS.register("intree_huber")(InTreeHuber)
    yield
    for reg, name in ((KINDS, "word_lengths"), (ENCODERS, "intree_mlp"), (FUSIONS, "intree_mean"), (HEADS, "intree_huber")):
        reg.unregister(name)


def test_components_registered_in_user_code_train_save_and_load(in_tree, tmp_path):
    rng = np.random.default_rng(0)
    texts = [" ".join("x" * int(k) for k in rng.integers(1, 9, 3)) for _ in range(80)]
    frame = pd.DataFrame({"text": texts, "vec": [rng.normal(size=2).astype(np.float32) for _ in texts]})
    frame["y"] = [float(len(t.split()[0])) for t in texts]  # the first word's length
    specs = [{"name": "words", "kind": "word_lengths", "columns": ["text"], "options": {"max_words": 3}, "encoder": {"dim": 8, "options": {"hidden": 16}}},
             {"name": "vec", "kind": "vector", "encoder": {"dim": 4}}]
    model_cfg = {"fusion": {"name": "intree_mean", "dim": 8}, "head": "intree_huber", "head_options": {"delta": 2.0}, "head_hidden": 0}
    train = {"max_epochs": 60, "batch_size": 16, "lr": 0.01, "patience": 0, "val_fraction": 0.0, "progress": False, "seed": 0}
    model = MultimodalModel(specs, "y", model=model_cfg, train=train, task="regression").fit(frame)
    assert isinstance(model.net.head, InTreeHuber) and model.net.head.delta == 2.0
    assert model.evaluate(frame)["r2"] > 0.8
    loaded = MultimodalModel.load(model.save(tmp_path / "m"))
    assert np.allclose(loaded.predict(frame), model.predict(frame), atol=1e-5)
    # typed options of the new components are checked like the built-in ones
    with pytest.raises(ConfigError, match=r"modalities\.words\.encoder\.options\.hidden: Input should be greater than or equal to 1"):
        MultimodalModel([{**specs[0], "encoder": {"options": {"hidden": 0}}}], "y")
    with pytest.raises(ConfigError, match=r"model\.head_options\.delta: Input should be a valid number"):
        MultimodalModel(specs, "y", model={**model_cfg, "head_options": {"delta": "wide"}})


# ------------------------------------------------------------------------------ from an installed plugin package

SCRIPT = r"""
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[2])
from test_plugins import toy_frame
from modalfuse import MultimodalModel
from modalfuse.cli import main
from modalfuse.errors import ConfigError
from modalfuse.schema import config_schema

frame = toy_frame()
specs = [{"name": "code", "kind": "digit_string", "encoder": {"dim": 8, "options": {"scale": 2.0}}},
         {"name": "vec", "kind": "vector", "encoder": {"name": "toy_counts", "dim": 8}}]
train = {"max_epochs": 40, "batch_size": 16, "lr": 0.01, "patience": 0, "val_fraction": 0.0, "progress": False, "seed": 0}
model = MultimodalModel(specs, "label", model={"fusion": {"name": "toy_product", "dim": 8}, "head": "toy_smooth",
                                                "head_options": {"smoothing": 0.05}}, train=train).fit(frame)
out = {"accuracy": model.evaluate(toy_frame(seed=1))["accuracy"], "head": type(model.net.head).__name__,
       "code_only": model.evaluate(toy_frame(seed=1), masks={"vec": False})["accuracy"]}
loaded = MultimodalModel.load(model.save(sys.argv[1]))
out["same"] = bool(np.array_equal(loaded.predict(frame), model.predict(frame)))
try:
    MultimodalModel([{**specs[0], "encoder": {"options": {"scale": "big"}}}], "label")
except ConfigError as err:
    out["bad_option"] = str(err)
schema = config_schema()
out["schema"] = sorted(c["if"]["properties"]["name"]["const"] for c in schema["$defs"]["FusionConfig"]["allOf"])
main(["kinds"])
print("RESULT " + json.dumps(out))
"""


def test_installed_plugin_package_adds_a_kind_an_encoder_a_fusion_and_a_head(tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-cache-dir",
                    "--disable-pip-version-check", "--target", str(site), str(PLUGIN)], check=True, timeout=240)
    assert list(site.glob("modalfuse_toy_plugin-*.dist-info/entry_points.txt"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "model"), str(Path(__file__).parent)],
                          capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import json

    out = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert out["head"] == "ToySmoothHead" and out["same"]
    assert out["accuracy"] > 0.8 and out["code_only"] > 0.6  # chance is 1/3
    assert "modalities.code.encoder.options.scale: Input should be a valid number" in out["bad_option"]
    assert "toy_product" in out["schema"]
    assert "digit_string" in proc.stdout.split("RESULT ", 1)[0]
