"""CUB birds (first 10 classes): GoogLeNet image features + doc2vec text features, random 80/20 split."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..config import ModalityConfig
from .base import DatasetInfo, LoadedDataset, github_files, register

FOLDER = "cub_image_text_features"
FILENAME = "cub_googlenet_doc2vec_c10.mat"


def load_cub(roots: dict[str, Path], seed: int = 0, test_fraction: float = 0.2) -> LoadedDataset:
    """Read the .mat file (views stored d × N) and split it stratified by class with ``seed``."""
    import scipy.io
    from sklearn.model_selection import train_test_split

    root = roots[FOLDER]
    mat = scipy.io.loadmat(root / FILENAME)
    image, text = (np.asarray(mat["X"][0, i], dtype=np.float32).T for i in range(2))
    frame = pd.DataFrame({"image": list(image), "text": list(text), "label": mat["gt"].astype(np.int64).ravel() - 1})
    train, test = train_test_split(frame, test_size=test_fraction, random_state=seed, stratify=frame["label"])
    return LoadedDataset(
        name="cub",
        description=INFO.description,
        train=train.reset_index(drop=True),
        test=test.reset_index(drop=True),
        target="label",
        task="classification",
        modalities=[ModalityConfig(name="image", kind="vector"), ModalityConfig(name="text", kind="vector")],
        root=root,
    )


INFO = register(
    DatasetInfo(
        name="cub",
        description="CUB-200-2011, first 10 classes (600 birds): 1024-d GoogLeNet image features + 300-d doc2vec "
        "text features; random stratified 80/20 split per seed.",
        reference="RCML (AAAI 2024) appendix: MC-dropout 89.76 %, deep ensemble 90.32 %, EDL 89.43 %, RCML 98.50 %.",
        licence="Derived features of CUB-200-2011 (Caltech, non-commercial research); file from github.com/ZhangqiJiang07/code_DIMvLN.",
        folders={FOLDER: github_files("ZhangqiJiang07/code_DIMvLN", "ac892703dc205be176519d1e028d151141f4d142",
                                      {FILENAME: "3003523c47747d9a4da3afb967a72e0c5b841363d92465db0917c945789a6bdc"}, prefix="data/")},
        loader=load_cub,
    )
)
