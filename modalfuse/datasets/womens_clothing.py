"""Women's E-Commerce Clothing Reviews as packaged by Multimodal-Toolkit: review text + product table -> recommended."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..config import ModalityConfig, TabularOptions
from .base import DatasetInfo, LoadedDataset, RemoteFile, github_raw, register

FOLDER = "text_tabular_womens_clothing"
TEXT = ["Title", "Review Text"]
NUMERIC = ["Rating", "Age", "Positive Feedback Count"]
CATEGORICAL = ["Division Name", "Department Name", "Class Name"]
TARGET = "Recommended IND"
_REPO = "georgian-io/Multimodal-Toolkit"
_COMMIT = "a9df7291491b9fbcfd2c578eab73390a15868f75"
_FILES = {
    "val.csv": "4fa0e4bd43259628f3eb89a7b31d7852b16d877efa31f24cdbb95ef50d7fafcc",
    "test.csv": "508bd19a93d720274f677b0589cd7ab4b15497ded16d071f3da7743801ae03b3",
}


def _read(path: Path) -> pd.DataFrame:
    """One CSV (multi-line quoted reviews); missing titles/reviews become empty strings."""
    frame = pd.read_csv(path, index_col=0).reset_index(drop=True)
    frame[TEXT] = frame[TEXT].fillna("")
    return frame


def load_womens_clothing(roots: dict[str, Path]) -> LoadedDataset:
    """Train on ``val.csv`` and test on ``test.csv`` (the toolkit's train.csv is not published at a fixed commit)."""
    root = roots[FOLDER]
    return LoadedDataset(
        name="womens_clothing",
        description=INFO.description,
        train=_read(root / "val.csv"),
        test=_read(root / "test.csv"),
        target=TARGET,
        task="classification",
        modalities=[
            ModalityConfig(name="review", kind="text", columns=TEXT),
            ModalityConfig(
                name="product",
                kind="tabular",
                options=TabularOptions(numeric=NUMERIC, categorical=CATEGORICAL, handle_unknown="ignore"),
            ),
        ],
        root=root,
    )


INFO = register(
    DatasetInfo(
        name="womens_clothing",
        description="Women's clothing reviews: title + review text and product/customer columns -> recommended (0/1); "
        "2,349 train (the toolkit's val.csv) / 2,349 test rows, ~82 % positive.",
        reference="Gu & Budhkar, Multimodal-Toolkit (2021): BERT-base on the full train set, F1 0.957 text only, 0.968 best.",
        licence="Data: Kaggle 'Women's E-Commerce Clothing Reviews' (CC0 per Kaggle); files from Multimodal-Toolkit (Apache-2.0).",
        folders={
            FOLDER: tuple(
                RemoteFile(name, github_raw(_REPO, _COMMIT, f"datasets/Womens_Clothing_E-Commerce_Reviews/{name}"), digest)
                for name, digest in _FILES.items()
            )
        },
        loader=load_womens_clothing,
    )
)
