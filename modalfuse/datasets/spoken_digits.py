"""Spoken + written digits: Free Spoken Digit Dataset recordings paired by label with UCI optical-digit images.

Each recording gets one image of the same digit from the same split, drawn with a seeded generator,
so the pairing is fixed for a seed and the two modalities carry independent evidence of the label.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..config import AudioOptions, ImageOptions, ModalityConfig
from .base import DatasetInfo, LoadedDataset, RemoteFile, common_root, github_raw, read_manifest, register

FSDD = "fsdd"
DIGITS = "digits_images"
TEST_INDICES = range(5)
"""FSDD's official split: recordings 0-4 of each speaker and digit are the test set."""
_FSDD_REPO = "Jakobovski/free-spoken-digit-dataset"
_FSDD_COMMIT = "26eb9aaf76e81b692f806f9140c2d2777410d7a1"
_OPTDIGITS_REPO = "yupinghuang/optical_digits"
_OPTDIGITS = {
    "train": ("optdigits.tra", "8e7006bce4fa42ac85d291eddef733faed8e659d",
              "43d96b36fc9732f2eabfcf8e38882b7442799ce59dd55b44c6369d630fb6cda7"),
    "test": ("optdigits.tes", "e20bac46f63c368613b24b2ff6b24259d791ae51",
             "94d7b3c067125a5f6a6d51cf1dc8e95de7d731e41c7f1e714897330242949464"),
}


def _recordings() -> list[tuple[str, int, str, int]]:
    """``(filename, digit, speaker, index)`` for every FSDD recording, ordered by digit, speaker, index."""
    rows = []
    for remote in INFO.folders[FSDD]:
        name = Path(remote.path).name
        digit, speaker, index = Path(name).stem.split("_")
        rows.append((name, int(digit), speaker, int(index)))
    return sorted(rows, key=lambda r: (r[1], r[2], r[3]))


def read_optdigits(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """8x8 float32 images scaled to 0..1 and int labels from an ``optdigits.tra``/``.tes`` file."""
    table = np.loadtxt(path, delimiter=",", comments="#", dtype=np.int64)
    images = (table[:, :64].reshape(-1, 8, 8) / 16.0).astype(np.float32)
    return images, table[:, 64]


def load_spoken_digits(roots: dict[str, Path], seed: int = 0) -> LoadedDataset:
    """Pair every recording with a random same-digit image of its split (``seed`` fixes the draw)."""
    rng = np.random.default_rng(seed)
    recordings = _recordings()
    frames = {}
    for split, (filename, _, _) in _OPTDIGITS.items():
        images, labels = read_optdigits(roots[DIGITS] / "uci_optdigits" / filename)
        pools = {digit: np.flatnonzero(labels == digit) for digit in range(10)}
        rows = [r for r in recordings if (r[3] in TEST_INDICES) == (split == "test")]
        picks = [pools[digit][rng.integers(len(pools[digit]))] for _, digit, _, _ in rows]
        frames[split] = pd.DataFrame(
            {
                "audio": [str(roots[FSDD] / "recordings" / name) for name, *_ in rows],
                "image": [images[i] for i in picks],
                "label": np.array([digit for _, digit, _, _ in rows], dtype=np.int64),
                "speaker": [speaker for _, _, speaker, _ in rows],
            }
        )
    return LoadedDataset(
        name="spoken_digits",
        description=INFO.description,
        train=frames["train"],
        test=frames["test"],
        target="label",
        task="classification",
        modalities=[
            ModalityConfig(name="audio", kind="audio", options=AudioOptions(sample_rate=8000, max_seconds=1.0)),
            ModalityConfig(name="image", kind="image", options=ImageOptions(size=(16, 16), channels=1)),
        ],
        root=common_root(roots),
    )


INFO = register(
    DatasetInfo(
        name="spoken_digits",
        description="Free Spoken Digit Dataset recordings (8 kHz WAV, 6 speakers) each paired with a same-digit "
        "8x8 UCI optical-digits image; official split 2,700 train / 300 test (not speaker-disjoint).",
        reference="Jackson et al., Free Spoken Digit Dataset (2018); Alpaydin & Kaynak, UCI Optical Recognition "
        "of Handwritten Digits (1998). No published result for the pairing.",
        licence="FSDD CC BY-SA 4.0; UCI optdigits CC BY 4.0.",
        folders={
            FSDD: tuple(
                RemoteFile(f"recordings/{name}", github_raw(_FSDD_REPO, _FSDD_COMMIT, f"recordings/{name}"), digest)
                for digest, name in read_manifest("fsdd_recordings.sha256")
            ),
            DIGITS: tuple(
                RemoteFile(f"uci_optdigits/{name}", github_raw(_OPTDIGITS_REPO, commit, f"data/{name}"), digest)
                for name, commit, digest in _OPTDIGITS.values()
            ),
        },
        loader=load_spoken_digits,
    )
)
