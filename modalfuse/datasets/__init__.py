"""Built-in datasets (downloaded on first use, checksummed, cached) and the offline demo."""
from . import cub, davis, demo, handwritten, spoken_digits, womens_clothing
from . import brca1, gb1  # variant-effect datasets (issue 20)
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
