"""Model folders: safetensors weights + JSON files + a SHA-256 manifest, written atomically, verified on load.

Every file is written to a temporary name and moved into place, the manifest last, so a folder
is either complete or has no (or an older) manifest; a folder that fails its manifest is refused
with the file that differs. Folders saved before manifests existed load without the check.
Nothing is pickled.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any, Optional, TypeVar

from pydantic import BaseModel, ValidationError

from ..errors import ConfigError

MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
M = TypeVar("M", bound=BaseModel)


class ModelFolderError(ConfigError):
    """A saved model folder is missing a file, was altered, or holds something unreadable."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_manifest(folder: Path, names: Optional[list[str]] = None) -> dict[str, Any]:
    """``manifest.json`` with the SHA-256 of ``names`` (default: every file in the folder but the manifest)."""
    names = names if names is not None else [p.name for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST]
    manifest = {"algorithm": "sha256", "files": {n: sha256_file(folder / n) for n in sorted(names)}}
    _atomic_write(folder / MANIFEST, json.dumps(manifest, indent=2).encode())
    return manifest


def verify_manifest(folder: Path, error: type[Exception] = ModelFolderError, required: bool = False) -> Optional[dict[str, Any]]:
    """Check every file the manifest lists; None for a folder without one (unless ``required``)."""
    mpath = folder / MANIFEST
    if not mpath.is_file():
        if required:
            raise error(f"{folder}: {MANIFEST} is missing")
        return None
    try:
        manifest = json.loads(mpath.read_text())
        files = dict(manifest["files"])
    except (ValueError, KeyError, TypeError, OSError) as err:
        raise error(f"{mpath}: unreadable manifest ({err})") from None
    for name, expected in files.items():
        if PurePosixPath(name).name != name:
            raise error(f"{mpath}: entry {name!r} is not a plain file name")
        path = folder / name
        if not path.is_file() or path.is_symlink():
            raise error(f"{folder}: file {name} is missing (listed in {MANIFEST})")
        actual = sha256_file(path)
        if actual != expected:
            raise error(f"{folder}: file {name} was modified: SHA-256 {actual} does not match the manifest's {expected}")
    return manifest


def save_model_folder(folder: str | Path, tensors: dict[str, Any], files: dict[str, str]) -> Path:
    """Write ``weights.safetensors`` (``tensors``) and the text ``files`` (name → content), then the manifest."""
    from safetensors.torch import save

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MANIFEST).unlink(missing_ok=True)  # the folder is incomplete until the new manifest lands
        _atomic_write(folder / WEIGHTS, save({k: v.detach().contiguous() for k, v in tensors.items()}))
        for name, text in files.items():
            _atomic_write(folder / name, text.encode())
        write_manifest(folder, [WEIGHTS, *files])
    except OSError as err:
        raise ModelFolderError(f"cannot write the model folder {folder}: {err.strerror or err}") from None
    return folder


def open_model_folder(folder: str | Path, spec_file: str, what: str = "saved model") -> Path:
    """``folder`` as a Path once it holds ``spec_file``, passes its manifest and was not written by a newer major version."""
    folder = Path(folder)
    if not (folder / spec_file).exists():
        raise ModelFolderError(f"{folder} holds no {what} ({spec_file} is missing)")
    verify_manifest(folder)
    if (folder / "meta.json").is_file():
        meta = read_json(folder, "meta.json")
        check_written_by(meta.get("modalfuse") if isinstance(meta, dict) else None, folder / "meta.json")
    return folder


def check_written_by(version: Any, where: Path, error: type[Exception] = ModelFolderError) -> None:
    """Refuse files written by a newer major version of modalfuse (or naming no readable version); warn for a newer minor one."""
    import warnings

    from .. import __version__

    def parse(text: Any) -> Optional[tuple[int, ...]]:
        try:
            return tuple(int(p) for p in str(text).split("+")[0].split(".")[:3])
        except ValueError:
            return None

    theirs, ours = parse(version), parse(__version__)
    if theirs is None:
        raise error(f"{where}: names no readable modalfuse version ({version!r})")
    if theirs[0] > ours[0] or (ours[0] == 0 and theirs[:2] > ours[:2]):
        raise error(f"{where}: written by modalfuse {version}, newer than this {__version__} can read; upgrade modalfuse")
    if theirs > ours:
        warnings.warn(f"{where}: written by modalfuse {version}, newer than this {__version__}; it may use features this version lacks",
                      stacklevel=2)


def estimator_files(train_config: BaseModel, preprocessors: dict[str, Any], history: dict[str, Any]) -> dict[str, str]:
    """The files every estimator saves beside its own spec: training config, fitted preprocessors, metadata."""
    import platform
    import time

    import torch

    from .. import __version__

    meta = {"modalfuse": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "history": {k: v for k, v in history.items() if k != "per_epoch"}}
    return {
        "train.json": train_config.model_dump_json(indent=2),
        "preprocessors.json": json.dumps({n: p.state_dict() for n, p in preprocessors.items()}),
        "meta.json": json.dumps(meta, indent=2, default=str),
    }


def load_preprocessors(preprocessors: dict[str, Any], folder: Path) -> None:
    """Fitted preprocessor state from ``preprocessors.json``; a missing or malformed entry names the modality."""
    states = read_json(folder, "preprocessors.json")
    for name, pre in preprocessors.items():
        if not isinstance(states, dict) or name not in states:
            raise ModelFolderError(f"{folder / 'preprocessors.json'}: no state for modality {name!r}")
        try:
            pre.load_state_dict(states[name])
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFolderError(f"{folder / 'preprocessors.json'}: modality {name!r}: malformed state ({type(err).__name__}: {err})") from None


def read_json(folder: Path, name: str, model: Optional[type[M]] = None) -> Any:
    """A JSON file of the folder, parsed (and validated into ``model``); errors name the file."""
    path = folder / name
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ModelFolderError(f"{folder}: {name} is missing") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ModelFolderError(f"{path}: unreadable ({err})") from None
    try:
        return model.model_validate_json(text) if model is not None else json.loads(text)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise ModelFolderError(f"{path}: {where + ': ' if where else ''}{first['msg']}") from None
    except ValueError as err:
        raise ModelFolderError(f"{path}: not valid JSON ({err})") from None


def read_tensors(folder: Path) -> dict[str, Any]:
    """The folder's weights; a truncated or foreign file is a one-line error naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = folder / WEIGHTS
    if not path.is_file():
        raise ModelFolderError(f"{folder}: {WEIGHTS} is missing")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelFolderError(f"{path}: unreadable weights ({err})") from None


def load_state(net, state: dict[str, Any], where: Path) -> None:
    """``net.load_state_dict(state)`` with a one-line error when the weights do not fit the network."""
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        raise ModelFolderError(f"{where / WEIGHTS}: the weights do not fit the model described beside them ({' '.join(first[:2])[:300]})") from None
