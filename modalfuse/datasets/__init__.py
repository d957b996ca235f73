"""Built-in datasets (downloaded on first use, checksummed, cached) and the offline demo."""
from . import basicmotions, brca1, cub, davis, demo, gb1, handwritten, spoken_digits, womens_clothing
from .base import (
    DATASETS,
    DatasetInfo,
    DownloadError,
    LoadedDataset,
    RemoteFile,
    cache_dir,
    dataset_info,
    download,
    list_datasets,
    load_dataset,
    resolve_root,
    resolve_roots,
)
from .demo import make_demo_data

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "DownloadError",
    "LoadedDataset",
    "RemoteFile",
    "cache_dir",
    "dataset_info",
    "download",
    "list_datasets",
    "load_dataset",
    "make_demo_data",
    "resolve_root",
    "resolve_roots",
]
