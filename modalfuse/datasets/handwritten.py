"""The 6-view handwritten digits (UCI Multiple Features) with the fixed 1600/400 split of TMC (ICLR 2021)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..config import ModalityConfig
from ..errors import DataError
from .base import DatasetInfo, LoadedDataset, github_files, register

FOLDER = "tmc_handwritten"
FILENAME = "handwritten_6views.mat"
VIEWS = {"pixels": 240, "fourier": 76, "profile": 216, "zernike": 47, "kl": 64, "morph": 6}
"""View name -> width, in the file's x1..x6 order."""


def _frame(mat: dict[str, np.ndarray], split: str, source: Path) -> pd.DataFrame:
    columns: dict[str, object] = {}
    for i, (view, width) in enumerate(VIEWS.items(), start=1):
        values = np.asarray(mat[f"x{i}_{split}"], dtype=np.float32)
        if values.shape[1] != width:
            raise DataError(f"x{i}_{split} has {values.shape[1]} columns, expected {width} ({view})", file=source)
        columns[view] = list(values)
    columns["label"] = mat[f"gt_{split}"].astype(np.int64).ravel() - 1
    return pd.DataFrame(columns)


def load_handwritten(roots: dict[str, Path]) -> LoadedDataset:
    """Read ``handwritten_6views.mat``: one float32 vector per view and cell, labels shifted from 1..10 to 0..9."""
    root = roots[FOLDER]
    import scipy.io  # imported here: slow to import and only this dataset needs it

    source = root / FILENAME
    mat = scipy.io.loadmat(source)
    return LoadedDataset(
        name="handwritten",
        description=INFO.description,
        train=_frame(mat, "train", source),
        test=_frame(mat, "test", source),
        target="label",
        task="classification",
        modalities=[ModalityConfig(name=view, kind="vector") for view in VIEWS],
        root=root,
    )


INFO = register(
    DatasetInfo(
        name="handwritten",
        description="UCI Multiple Features handwritten digits: 6 feature views of 2,000 digits (10 classes), "
        "TMC split 1600 train / 400 test.",
        reference="Han et al., Trusted Multi-View Classification, ICLR 2021: 98.51 ± 0.15 % test accuracy on this split.",
        licence="UCI Multiple Features (Duin), CC BY 4.0; file from github.com/hanmenghan/TMC (no licence file).",
        folders={FOLDER: github_files("hanmenghan/TMC", "08d0ca4c4461b6de1cf73514d8c621598bc2b504",
                                      {FILENAME: "d731ec02aaa97cf9a5826df68b0dd1e73ba61a82ba3c8f64606ba402926c885b"}, prefix="TMC ICLR/datasets/")},
        loader=load_handwritten,
    )
)
