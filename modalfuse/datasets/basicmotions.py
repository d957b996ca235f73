"""BasicMotions (UEA archive): smart-watch accelerometer + gyroscope, 4 activities, two sensors as two modalities."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..config import ModalityConfig
from ..errors import DataError
from ..kinds.timeseries import read_ts
from .base import DatasetInfo, LoadedDataset, github_files, register

FOLDER = "sensor_basicmotions"
SENSORS = {"accelerometer": (0, 1, 2), "gyroscope": (3, 4, 5)}
"""Modality → channel indices in the .ts files (dimensions 1-3 and 4-6)."""
STEPS = 100


def _frame(path: Path) -> pd.DataFrame:
    cases, labels = read_ts(path)
    shapes = {c.shape for c in cases}
    if shapes != {(6, STEPS)}:
        raise DataError(f"expected 6 channels × {STEPS} steps per case, got shapes {sorted(shapes)}", file=path)
    stacked = np.stack(cases)
    frame = pd.DataFrame({name: list(stacked[:, list(ch)]) for name, ch in SENSORS.items()})
    frame["activity"] = labels
    return frame


def load_basicmotions(roots: dict[str, Path]) -> LoadedDataset:
    """Train/test frames: one [3, 100] float array per sensor and row, the activity as the label."""
    root = roots[FOLDER]
    splits = {split: _frame(root / f"BasicMotions_{split.upper()}.ts") for split in ("train", "test")}
    modalities = [ModalityConfig(name=name, kind="timeseries") for name in SENSORS]
    return LoadedDataset("basicmotions", INFO.description, target="activity", task="classification",
                         modalities=modalities, root=root, **splits)


_SOURCE = "aeon-toolkit/aeon"
_REF = "v1.6.0"
INFO = register(
    DatasetInfo(
        name="basicmotions",
        description="BasicMotions (UEA multivariate archive): 3D accelerometer + 3D gyroscope of a smart watch, 10 s at 10 Hz, "
        "4 activities (Standing, Running, Walking, Badminton); 40 train / 40 test cases.",
        reference="Bagnall et al., The UEA multivariate time series classification archive, 2018; ROCKET/MiniRocket reach about 100 %.",
        licence="UEA archive data as distributed with aeon (BSD-3-Clause).",
        folders={FOLDER: github_files(_SOURCE, _REF, {
            "BasicMotions_TRAIN.ts": "8dc43cc6306cb679c888c01e26f91772ac4441a916da43bac8b79734a538b9d6",
            "BasicMotions_TEST.ts": "79213102bc6fca1a398ad98ce1185dff0208fa3d1465e687f48288946b0ff8dc",
        }, prefix="aeon/datasets/data/BasicMotions/")},
        loader=load_basicmotions,
    )
)
