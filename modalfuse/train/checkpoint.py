"""Training checkpoints as safetensors + JSON folders, written atomically, verified before they are loaded.

A Lightning checkpoint is a nested dict (weights, optimizer and scheduler state, loop progress, callback state,
RNG states). It is split into its tensors (``weights.safetensors`` for the module's weights, ``state.safetensors``
for every other tensor) and a JSON skeleton (``state.json``) that names them; tuples, int-keyed dicts and NumPy
arrays are tagged so that they come back as they went in. Nothing is pickled; a leaf of any other type is refused.

A checkpoint is written into a hidden temporary folder (files, then the SHA-256 manifest), which is renamed into
place only when complete: a folder under ``checkpoints/`` either passes its manifest or is skipped on load, with
the previous good checkpoint used instead.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from lightning.fabric.plugins import CheckpointIO

from ..core.storage import ModelFolderError, _atomic_write, verify_manifest, write_manifest

FOLDER = "checkpoints"
WEIGHTS, STATE, SKELETON = "weights.safetensors", "state.safetensors", "state.json"
_NAME = re.compile(r"^epoch(\d+)-step(\d+)$")


class CheckpointError(ModelFolderError):
    """A checkpoint folder is incomplete, altered or holds something this version cannot read."""


def encode(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The JSON skeleton of ``tree``; its tensors go into ``tensors`` under numbered keys."""
    if isinstance(tree, torch.Tensor):
        key = str(len(tensors))
        tensors[key] = tree.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(tree, np.ndarray):
        return {"__ndarray__": tree.tolist(), "dtype": str(tree.dtype)}
    if isinstance(tree, np.generic):
        return tree.item()
    if isinstance(tree, (bool, int, float, str)) or tree is None:
        return tree
    if isinstance(tree, tuple):
        return {"__tuple__": [encode(v, tensors) for v in tree]}
    if isinstance(tree, list):
        return [encode(v, tensors) for v in tree]
    if isinstance(tree, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in tree):
            return {k: encode(v, tensors) for k, v in tree.items()}
        return {"__items__": [[encode(k, tensors), encode(v, tensors)] for k, v in tree.items()]}
    raise CheckpointError(f"cannot store a {type(tree).__name__} in a checkpoint without pickling it")


def decode(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`encode`."""
    if isinstance(tree, list):
        return [decode(v, tensors) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if "__tensor__" in tree:
        return tensors[tree["__tensor__"]]
    if "__ndarray__" in tree:
        return np.asarray(tree["__ndarray__"], dtype=tree["dtype"])
    if "__tuple__" in tree:
        return tuple(decode(v, tensors) for v in tree["__tuple__"])
    if "__items__" in tree:
        return {_key(decode(k, tensors)): decode(v, tensors) for k, v in tree["__items__"]}
    return {k: decode(v, tensors) for k, v in tree.items()}


def _key(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


class SafetensorsCheckpointIO(CheckpointIO):
    """Lightning's checkpoint plugin, writing and reading checkpoint folders instead of pickled files."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Optional[Any] = None) -> None:
        save_checkpoint(checkpoint, Path(path))

    def load_checkpoint(self, path, map_location: Optional[Any] = None, weights_only: Optional[bool] = None) -> dict[str, Any]:
        return load_checkpoint(Path(path))

    def remove_checkpoint(self, path) -> None:
        shutil.rmtree(path, ignore_errors=True)


def save_checkpoint(checkpoint: dict[str, Any], folder: Path) -> Path:
    """Write ``checkpoint`` to ``folder`` atomically: a temporary sibling folder, complete with its manifest, renamed."""
    from safetensors.torch import save

    body = dict(checkpoint)
    weights = {k: v.detach().cpu().contiguous() for k, v in body.pop("state_dict", {}).items()}
    tensors: dict[str, torch.Tensor] = {}
    skeleton = encode(body, tensors)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
    try:
        _atomic_write(tmp / WEIGHTS, save(weights))
        _atomic_write(tmp / STATE, save(tensors))
        _atomic_write(tmp / SKELETON, json.dumps(skeleton).encode())
        write_manifest(tmp, [WEIGHTS, STATE, SKELETON])
        if folder.exists():
            shutil.rmtree(folder)
        os.rename(tmp, folder)
        _fsync_dir(folder.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def load_checkpoint(folder: Path) -> dict[str, Any]:
    """A checkpoint folder, its manifest checked first; any problem is a :class:`CheckpointError` naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    verify_manifest(folder, error=CheckpointError, required=True)
    try:
        body = decode(json.loads((folder / SKELETON).read_text()), load_file(str(folder / STATE)))
        body["state_dict"] = load_file(str(folder / WEIGHTS))
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{folder}: unreadable checkpoint ({type(err).__name__}: {err})") from None
    return body


def checkpoint_name(epoch: int, step: int) -> str:
    return f"epoch{epoch:04d}-step{step:07d}"


def checkpoints(run_dir: Path) -> list[Path]:
    """The complete-looking checkpoint folders of a run, newest (highest step) first; temporary folders are left out."""
    root = Path(run_dir) / FOLDER
    found = [(int(m.group(2)), int(m.group(1)), p) for p in root.iterdir() if (m := _NAME.match(p.name)) and p.is_dir()] if root.is_dir() else []
    return [p for *_, p in sorted(found, reverse=True)]


def latest_checkpoint(run_dir: Path) -> Optional[Path]:
    """The newest checkpoint of ``run_dir`` that passes its manifest; damaged ones are reported and skipped."""
    for folder in checkpoints(run_dir):
        try:
            verify_manifest(folder, error=CheckpointError, required=True)
            return folder
        except CheckpointError as err:
            print(f"warning: skipping damaged checkpoint: {err}", file=sys.stderr)
    return None


def prune(run_dir: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints, and temporary folders that a killed writer left behind."""
    root = Path(run_dir) / FOLDER
    for folder in checkpoints(run_dir)[keep:]:
        shutil.rmtree(folder, ignore_errors=True)
    for tmp in root.glob(".*.tmp") if root.is_dir() else []:
        shutil.rmtree(tmp, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
