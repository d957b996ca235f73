"""Built-in datasets: a registry, folder resolution (argument, environment, cache) and checksummed downloads.

A dataset is made of one or more named folders (the names used under ``shared/data`` and in the cache).
Each folder is looked for in ``data_dir``, then ``$MODALFUSE_DATA_DIR`` (either may be the folder itself or
its parent), then the cache; missing files are downloaded into the cache and verified against SHA-256.
"""
from __future__ import annotations

import difflib
import hashlib
import inspect
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, Literal, Optional, Union

import pandas as pd
from tqdm.auto import tqdm

from ..config import ModalityConfig
from ..errors import ConfigError, ModalfuseError

PathLike = Union[str, os.PathLike]

DATA_DIR_ENV = "MODALFUSE_DATA_DIR"
CACHE_ENV = "MODALFUSE_CACHE"
DOWNLOAD_WORKERS = 8


class DownloadError(ModalfuseError):
    """A file could not be fetched, or its content does not match the published checksum."""


@dataclass
class LoadedDataset:
    """A built-in dataset ready for training: train/test frames plus the modalities that read them.

    Image and audio cells hold absolute paths (or arrays), so the frames work from any directory.
    """

    name: str
    description: str
    train: pd.DataFrame
    test: pd.DataFrame
    target: str
    task: Literal["classification", "regression"]
    modalities: list[ModalityConfig]
    root: Path


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset folder: its path inside the folder, where to fetch it and its SHA-256."""

    path: str
    url: str
    sha256: str


@dataclass(frozen=True)
class LocalBuild:
    """A folder made on this machine instead of downloaded; it is complete once ``marker`` exists."""

    marker: str
    build: Callable[[Path], object]


@dataclass(frozen=True)
class DatasetInfo:
    """Registry entry: what the dataset is, where its files come from and how to load them.

    ``folders`` maps each folder name to its remote files; ``loader`` receives ``{folder: path}``
    plus any dataset options given to :func:`load_dataset`.
    """

    name: str
    description: str
    reference: str
    licence: str
    folders: dict[str, tuple[RemoteFile, ...]]
    loader: Callable[..., LoadedDataset]
    builds: dict[str, LocalBuild] = field(default_factory=dict)

    @property
    def options(self) -> list[str]:
        """Keyword options the loader accepts (e.g. ``seed``)."""
        return list(inspect.signature(self.loader).parameters)[1:]


DATASETS: dict[str, DatasetInfo] = {}


def register(info: DatasetInfo) -> DatasetInfo:
    """Add a dataset to the registry under ``info.name``."""
    DATASETS[info.name] = info
    return info


def github_raw(repo: str, commit: str, path: str) -> str:
    """URL of a file at a fixed commit of a public GitHub repository."""
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{urllib.parse.quote(path)}"


def github_files(repo: str, commit: str, files: dict[str, str], prefix: str = "", local: str = "") -> tuple[RemoteFile, ...]:
    """RemoteFiles for ``files`` (path in the repository below ``prefix`` → SHA-256), stored under ``local`` in the folder."""
    return tuple(RemoteFile(local + path, github_raw(repo, commit, prefix + path), sha) for path, sha in files.items())


def read_manifest(filename: str) -> list[tuple[str, str]]:
    """``(sha256, name)`` pairs from a ``sha256  name`` manifest shipped in ``datasets/manifests``."""
    text = resources.files(__package__).joinpath("manifests", filename).read_text()
    return [(digest, name) for digest, name in (line.split(None, 1) for line in text.splitlines() if line.strip())]


def list_datasets() -> list[str]:
    """Names of the built-in datasets."""
    return sorted(DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry for ``name``; unknown names get a "did you mean" hint."""
    try:
        return DATASETS[name]
    except KeyError:
        close = difflib.get_close_matches(name, DATASETS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown dataset {name!r}{hint} (available: {', '.join(list_datasets())})") from None


def cache_dir() -> Path:
    """Where downloaded datasets live: ``$MODALFUSE_CACHE/datasets``, else under ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser() / "datasets"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return base / "modalfuse" / "datasets"


def fetch_file(remote: RemoteFile, folder: Path) -> Path:
    """Download ``remote`` into ``folder``, verifying its SHA-256; only a verified file ever appears there.

    The bytes go to a temporary file beside the target and are renamed into place, so an interrupted
    or corrupt download leaves nothing behind.
    """
    target = folder / remote.path
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(remote.url, timeout=60) as response:
            while chunk := response.read(1 << 16):
                digest.update(chunk)
                out.write(chunk)
        actual = digest.hexdigest()
        if actual != remote.sha256:
            raise DownloadError(
                f"checksum mismatch for {remote.url}: expected sha256 {remote.sha256}, got {actual}; file discarded"
            )
        tmp.chmod(0o644)
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError) as err:
        raise DownloadError(
            f"could not download {remote.url}: {err} (offline? pass --data-dir DIR or set {DATA_DIR_ENV})"
        ) from err
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _missing(info: DatasetInfo, folder: str, path: Path) -> list[str]:
    if folder in info.builds:
        marker = info.builds[folder].marker
        return [] if (path / marker).is_file() else [marker]
    return [f.path for f in info.folders[folder] if not (path / f.path).is_file()]


def _fill(info: DatasetInfo, folder: str, path: Path) -> None:
    """Download (or build) whatever ``folder`` lacks at ``path``."""
    if folder in info.builds:
        info.builds[folder].build(path)
        return
    wanted = set(_missing(info, folder, path))
    todo = [f for f in info.folders[folder] if f.path in wanted]
    if not todo:
        return
    path.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=min(DOWNLOAD_WORKERS, len(todo))) as pool:
        futures = [pool.submit(fetch_file, f, path) for f in todo]
        try:
            for future in tqdm(
                as_completed(futures), total=len(futures), desc=f"downloading {folder}", unit="file",
                disable=len(futures) < 2,
            ):
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _verify(info: DatasetInfo, folder: str, path: Path) -> Path:
    """Every published file of ``folder`` at ``path`` has its published SHA-256 (local copies and the cache alike):
    a renamed file of another dataset, an edited or a damaged one is refused, naming it."""
    from ..core.storage import sha256_file

    if folder in info.builds:
        return path
    for remote in info.folders[folder]:
        actual = sha256_file(path / remote.path)
        if actual != remote.sha256:
            raise ConfigError(
                f"dataset {info.name!r}: {path / remote.path} has SHA-256 {actual[:16]}…, the published file has "
                f"{remote.sha256[:16]}…: it is another file (renamed, edited or damaged); put the published file there, "
                f"or remove it to download a fresh copy"
            )
    return path


def _candidates(folder: str, data_dir: Optional[PathLike]) -> list[Path]:
    bases = [Path(b).expanduser() for b in (data_dir, os.environ.get(DATA_DIR_ENV)) if b]
    return [p for base in bases for p in (base, base / folder)]


def _resolve_folder(info: DatasetInfo, folder: str, data_dir: Optional[PathLike], download: bool) -> Path:
    for candidate in _candidates(folder, data_dir):
        if candidate.is_dir() and not _missing(info, folder, candidate):
            return _verify(info, folder, candidate.resolve())
    cached = cache_dir() / folder
    missing = _missing(info, folder, cached)
    if missing and (download or folder in info.builds):
        _fill(info, folder, cached)
    elif missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        searched = ", ".join(str(p) for p in [*_candidates(folder, data_dir), cached])
        raise ConfigError(
            f"dataset {info.name!r}: folder {folder!r} is missing {len(missing)} file(s) ({shown}); looked in {searched}. "
            f"Pass --data-dir DIR (or set {DATA_DIR_ENV}=DIR) pointing at a folder that holds {folder}/, "
            f"or allow downloading."
        )
    return _verify(info, folder, cached.resolve())


def common_root(roots: dict[str, Path]) -> Path:
    """The single folder of a dataset, or the deepest folder holding all of its folders."""
    paths = list(roots.values())
    return paths[0] if len(paths) == 1 else Path(os.path.commonpath(paths))


def resolve_roots(name: str, data_dir: Optional[PathLike] = None, download: bool = True) -> dict[str, Path]:
    """Find (or fetch) every folder of dataset ``name``; returns ``{folder name: absolute path}``."""
    info = dataset_info(name)
    return {folder: _resolve_folder(info, folder, data_dir, download) for folder in info.folders}


def resolve_root(name: str, data_dir: Optional[PathLike] = None, download: bool = True) -> Path:
    """The folder dataset ``name`` is read from (for multi-folder datasets, the folder that holds them all)."""
    return common_root(resolve_roots(name, data_dir, download))


def download(name: str, dest: Optional[PathLike] = None) -> Path:
    """Fetch the files of dataset ``name`` into ``dest/<folder>`` (default: the cache); returns its root."""
    info = dataset_info(name)
    base = Path(dest).expanduser() if dest is not None else cache_dir()
    roots = {}
    for folder in info.folders:
        path = base / folder
        if _missing(info, folder, path):
            _fill(info, folder, path)
        roots[folder] = path.resolve()
    return common_root(roots)


def load_dataset(name: str, data_dir: Optional[PathLike] = None, download: bool = True, **options: object) -> LoadedDataset:
    """Load built-in dataset ``name``, finding or downloading its files first.

    ``options`` go to the dataset's loader (e.g. ``seed`` for ``spoken_digits``).
    """
    info = dataset_info(name)
    unknown = sorted(set(options) - set(info.options))
    if unknown:
        allowed = ", ".join(info.options) or "none"
        raise ConfigError(f"dataset {name!r} has no option(s) {', '.join(unknown)} (allowed: {allowed})")
    return info.loader(resolve_roots(name, data_dir, download), **options)
