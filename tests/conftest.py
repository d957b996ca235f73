"""Shared test set-up: isolated caches, offline Hugging Face, and tiny real multimodal tables.

The environment is set in ``pytest_configure`` (before any test module imports modalfuse,
transformers or huggingface_hub), so every cache the library or its dependencies might touch
lies in a temporary folder and nothing tries to reach the network.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd
import pytest

_ENV_KEYS = ("MODALFUSE_CACHE", "MPLCONFIGDIR", "HF_HOME", "XDG_CACHE_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM")
_saved_env: dict[str, Optional[str]] = {}
_tmp_root: Optional[str] = None


def pytest_configure(config: pytest.Config) -> None:
    global _tmp_root
    _tmp_root = tempfile.mkdtemp(prefix="modalfuse-tests-")
    for key in _ENV_KEYS:
        _saved_env[key] = os.environ.get(key)
    root = Path(_tmp_root)
    os.environ["MODALFUSE_CACHE"] = str(root / "modalfuse")
    os.environ["MPLCONFIGDIR"] = str(root / "matplotlib")
    os.environ["HF_HOME"] = str(root / "hf")
    os.environ["XDG_CACHE_HOME"] = str(root / "xdg")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    # a deprecation inside Lightning itself, not ours to fix
    config.addinivalue_line("filterwarnings", "ignore:.*LeafSpec.*:DeprecationWarning")
    config.addinivalue_line("filterwarnings", "ignore:.*LeafSpec.*")
    try:  # two cores: keep torch from oversubscribing them
        import torch

        torch.set_num_threads(2)
    except Exception:  # pragma: no cover
        pass


def pytest_unconfigure(config: pytest.Config) -> None:
    for key, value in _saved_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if _tmp_root:
        shutil.rmtree(_tmp_root, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _isolated_caches() -> Path:
    """Every cache variable points into the session's temporary folder."""
    root = Path(os.environ["MODALFUSE_CACHE"]).parent
    assert str(root) == _tmp_root
    return root


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module: on a shared 2-core machine two spinning threads make small models ~10x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared data folder not found at {path}")
    return path


# --------------------------------------------------------------------------- tiny real data

SAMPLE_RATE = 8000
AUDIO_SECONDS = 0.25
IMAGE_SIZE = 12


def write_png(path: Path, label: int, rng: np.random.Generator, size: int = IMAGE_SIZE) -> None:
    """A grayscale PNG: class 0 bright on top, class 1 bright at the bottom, plus noise."""
    from PIL import Image

    pixels = rng.uniform(0, 60, size=(size, size))
    half = size // 2
    if label == 0:
        pixels[:half] += 180
    else:
        pixels[half:] += 180
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L").save(path)


def write_wav(path: Path, label: int, rng: np.random.Generator) -> None:
    """A short 16-bit WAV: a 440 Hz (class 0) or 1200 Hz (class 1) tone with noise."""
    import soundfile

    t = np.arange(int(SAMPLE_RATE * AUDIO_SECONDS)) / SAMPLE_RATE
    freq = 440.0 if label == 0 else 1200.0
    wave = 0.5 * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi)) + 0.05 * rng.normal(size=t.shape)
    soundfile.write(str(path), wave.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")


def build_table(folder: Path, n: int = 24, seed: int = 0, name: str = "table.csv", prefix: str = "") -> tuple[Path, pd.DataFrame]:
    """Write ``n`` rows (images, audio, text, numeric, categorical, label) and a CSV beside them.

    Image and audio cells are paths relative to the CSV's folder.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "img").mkdir(exist_ok=True)
    (folder / "wav").mkdir(exist_ok=True)
    rows = []
    for i in range(n):
        label = i % 2
        img = f"img/{prefix}{i}.png"
        wav = f"wav/{prefix}{i}.wav"
        write_png(folder / img, label, rng)
        write_wav(folder / wav, label, rng)
        words = ["good", "nice", "bright"] if label == 0 else ["bad", "awful", "dark"]
        rows.append({
            "image": img,
            "audio": wav,
            "text": f"{' '.join(rng.permutation(words))} item{prefix}{i}",
            "x1": round(float(rng.normal(2.0 * label, 0.5)), 4),
            "x2": round(float(rng.normal(10.0, 3.0)), 4),
            "color": ["red", "green", "blue"][i % 3],
            "label": ["cat", "dog"][label],
        })
    frame = pd.DataFrame(rows)
    path = folder / name
    frame.to_csv(path, index=False)
    return path, frame


@pytest.fixture
def make_table(tmp_path: Path) -> Callable[..., tuple[Path, pd.DataFrame]]:
    """Factory: ``make_table(n=24, seed=0, sub='data', name='table.csv')`` → (csv path, frame)."""

    def make(n: int = 24, seed: int = 0, sub: str = "data", name: str = "table.csv", prefix: str = "") -> tuple[Path, pd.DataFrame]:
        return build_table(tmp_path / sub, n=n, seed=seed, name=name, prefix=prefix)

    return make


@pytest.fixture
def tiny_table(make_table) -> tuple[Path, pd.DataFrame]:
    return make_table()


def modality_specs(*names: str, dim: int = 8) -> list[dict[str, Any]]:
    """Small, fast modality configs (dicts) for the columns ``build_table`` writes."""
    specs = {
        "image": {"name": "image", "kind": "image", "options": {"size": [IMAGE_SIZE, IMAGE_SIZE], "channels": 1},
                  "encoder": {"dim": dim, "options": {"widths": [4, 8], "dropout": 0.0}}},
        "audio": {"name": "audio", "kind": "audio", "options": {"sample_rate": SAMPLE_RATE, "max_seconds": AUDIO_SECONDS},
                  "encoder": {"dim": dim, "options": {"widths": [4, 8], "n_mels": 16, "dropout": 0.0}}},
        "text": {"name": "text", "kind": "text", "options": {"max_tokens": 8},
                 "encoder": {"dim": dim, "options": {"embed_dim": 8, "filters": 8, "dropout": 0.0}}},
        "tabular": {"name": "tabular", "kind": "tabular", "options": {"numeric": ["x1", "x2"], "categorical": ["color"]},
                    "encoder": {"dim": dim, "options": {"hidden": 16, "dropout": 0.0}}},
    }
    return [specs[n] for n in names]


@pytest.fixture
def specs() -> Callable[..., list[dict[str, Any]]]:
    """Factory for small modality configs: ``specs('image', 'tabular', dim=8)``."""
    return modality_specs


FAST_TRAIN = {"max_epochs": 2, "batch_size": 8, "lr": 3e-3, "patience": 0, "seed": 0, "progress": False, "val_fraction": 0.25}


@pytest.fixture
def fast_train() -> dict[str, Any]:
    return dict(FAST_TRAIN)
