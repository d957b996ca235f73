"""Offline demo data: real 8x8 digit images with synthetic DTMF keypad tones, each sample damaged in one modality.

The images are scikit-learn's bundled ``load_digits`` (no download). For a random share of samples the image is
made near unrecognisable and for another, disjoint share the audio is, so a model does well only if it fuses
the two and learns which one to trust per sample.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile
from PIL import Image

from ..config import AudioOptions, ImageOptions, ModalityConfig
from ..errors import ConfigError
from .base import DatasetInfo, LoadedDataset, LocalBuild, PathLike, register

FOLDER = "demo"
TABLE = "demo.csv"
SAMPLE_RATE = 8000
DTMF = {
    1: (697, 1209), 2: (697, 1336), 3: (697, 1477),
    4: (770, 1209), 5: (770, 1336), 6: (770, 1477),
    7: (852, 1209), 8: (852, 1336), 9: (852, 1477),
    0: (941, 1336),
}
"""Keypad digit -> (row, column) frequencies in Hz of the standard DTMF tone."""
DESCRIPTION = (
    "Demo: scikit-learn's 1,797 8x8 digit images + synthetic 8 kHz DTMF tones of the same digit; "
    "for disjoint random shares of samples the image or the audio is corrupted (column 'corrupted'). 75/25 stratified split."
)


def dtmf_tone(digit: int, seconds: float, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """The keypad tone of ``digit`` at ``SAMPLE_RATE`` with random phases, peak at most ``amplitude``."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    low, high = DTMF[digit]
    phase = rng.uniform(0, 2 * np.pi, size=2)
    return amplitude / 2 * (np.sin(2 * np.pi * low * t + phase[0]) + np.sin(2 * np.pi * high * t + phase[1]))


def _image(image: np.ndarray, corrupt: bool, rng: np.random.Generator) -> np.ndarray:
    """Scale 0..16 to 0..255; a corrupted image is mostly uniform noise with a random 4x4 block blanked out."""
    if corrupt:
        image = 0.15 * image + 0.85 * rng.uniform(0, 16, size=image.shape)
        row, col = rng.integers(0, 5, size=2)
        image[row : row + 4, col : col + 4] = rng.choice([0.0, 16.0])
    return np.round(image * (255 / 16)).astype(np.uint8)


def _audio(digit: int, corrupt: bool, rng: np.random.Generator) -> np.ndarray:
    """A tone of random length and loudness with mild noise; corrupted: drowned in loud noise or another digit's tone."""
    seconds = rng.uniform(0.25, 0.5)
    amplitude = rng.uniform(0.2, 0.6)
    noise = 0.01
    if corrupt and rng.random() < 0.5:
        digit = int((digit + rng.integers(1, 10)) % 10)
    elif corrupt:
        amplitude, noise = 0.02 * amplitude, 0.5
    wave = dtmf_tone(digit, seconds, amplitude, rng)
    wave += rng.normal(0, noise, size=wave.shape)
    return np.clip(wave, -1, 1).astype(np.float32)


def make_demo_data(folder: PathLike, seed: int = 0, corrupt_fraction: float = 0.35) -> LoadedDataset:
    """Write the demo (``images/*.png``, ``audio/*.wav``, ``demo.csv`` with relative paths) into ``folder``.

    Deterministic for a ``seed``. ``corrupt_fraction`` of the samples get a corrupted image and another
    ``corrupt_fraction`` a corrupted audio clip, so it must be at most 0.5.
    """
    if not 0 <= corrupt_fraction <= 0.5:
        raise ConfigError(f"corrupt_fraction must be between 0 and 0.5, got {corrupt_fraction}")
    from sklearn.datasets import load_digits  # imported here: scikit-learn is slow to import and only the demo needs it
    from sklearn.model_selection import train_test_split

    folder = Path(folder).expanduser().resolve()
    digits = load_digits()
    labels = digits.target.astype(np.int64)
    n = len(labels)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    k = round(corrupt_fraction * n)
    corrupted = np.full(n, "none", dtype=object)
    corrupted[order[:k]] = "image"
    corrupted[order[k : 2 * k]] = "audio"
    _, test_rows = train_test_split(np.arange(n), test_size=0.25, stratify=labels, random_state=seed)
    split = np.full(n, "train", dtype=object)
    split[test_rows] = "test"

    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    images, clips = [], []
    for i in range(n):
        stem = f"{i + 1:05d}"
        images.append(f"images/{stem}.png")
        clips.append(f"audio/{stem}.wav")
        Image.fromarray(_image(digits.images[i].copy(), corrupted[i] == "image", rng)).save(folder / images[-1])
        soundfile.write(folder / clips[-1], _audio(int(labels[i]), corrupted[i] == "audio", rng), SAMPLE_RATE, subtype="PCM_16")
    table = pd.DataFrame({"image": images, "audio": clips, "label": labels, "corrupted": corrupted, "split": split})
    tmp = folder / f".{TABLE}.part"
    table.to_csv(tmp, index=False)
    os.replace(tmp, folder / TABLE)
    return _loaded(folder, table)


def _loaded(folder: Path, table: pd.DataFrame) -> LoadedDataset:
    table = table.assign(
        image=[str(folder / p) for p in table["image"]],
        audio=[str(folder / p) for p in table["audio"]],
    )
    train, test = (table[table["split"] == s].drop(columns="split").reset_index(drop=True) for s in ("train", "test"))
    return LoadedDataset(
        name="demo",
        description=DESCRIPTION,
        train=train,
        test=test,
        target="label",
        task="classification",
        modalities=[
            ModalityConfig(name="image", kind="image", options=ImageOptions(size=(16, 16), channels=1)),
            ModalityConfig(name="audio", kind="audio", options=AudioOptions(sample_rate=SAMPLE_RATE, max_seconds=0.5)),
        ],
        root=folder,
    )


def load_demo(roots: dict[str, Path]) -> LoadedDataset:
    """Read a demo folder written by :func:`make_demo_data`."""
    folder = roots[FOLDER]
    return _loaded(folder, pd.read_csv(folder / TABLE))


INFO = register(
    DatasetInfo(
        name="demo",
        description=DESCRIPTION,
        reference="Images: Alpaydin & Kaynak, UCI Optical Recognition of Handwritten Digits (via scikit-learn); "
        "audio synthesised (ITU-T Q.23 DTMF). No published results.",
        licence="Images CC BY 4.0 (UCI); generated audio has no restrictions.",
        folders={FOLDER: ()},
        loader=load_demo,
        builds={FOLDER: LocalBuild(TABLE, make_demo_data)},
    )
)
