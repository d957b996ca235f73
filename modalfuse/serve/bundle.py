"""Model bundles: the saved model files plus a model card and a SHA-256 manifest.

A bundle is a directory (or a ``.tar.gz`` of one) holding what :meth:`MultimodalModel.save`
writes (safetensors weights, JSON spec, preprocessor state), ``card.json`` (metrics, training
config, versions, data description) and ``manifest.json`` (the SHA-256 of every other file).
Loading verifies every checksum and refuses archive members that could escape the folder.
"""
from __future__ import annotations

import itertools
import json
import platform
import shutil
import tarfile
import tempfile
import time
from importlib import metadata as importlib_metadata
from pathlib import Path, PurePosixPath
from typing import Any, Optional

import yaml

from .. import __version__
from ..core.storage import MANIFEST, ModelFolderError, check_written_by, sha256_file, verify_manifest, write_manifest
from ..errors import ModalfuseError
from ..tracking.lineage import lineage_of

CARD = "card.json"
#: the card format this version writes and reads; a bundle claiming a later one is refused
CARD_FORMAT = 1
MODEL_FILES = ("model.json", "train.json", "preprocessors.json", "weights.safetensors", "meta.json")
DEPENDENCIES = ("torch", "numpy", "pandas", "safetensors", "pydantic", "scikit-learn", "scipy", "Pillow", "soundfile",
                "fastapi", "uvicorn", "onnx", "onnxruntime")


class BundleError(ModelFolderError):
    """A bundle is incomplete, was altered after export, or is an unsafe archive."""


def is_archive(path: str | Path) -> bool:
    return str(path).endswith((".tar.gz", ".tgz"))


def find_model_dir(source: str | Path) -> tuple[Path, Optional[Path]]:
    """(model folder, run folder or None) for a saved model folder or a ``modalfuse train`` run folder."""
    source = Path(source)
    if (source / "model.json").exists():
        run = source.parent if (source.parent / "config.yaml").exists() else None
        return source, run
    if (source / "model" / "model.json").exists():
        return source / "model", source
    raise BundleError(f"{source} is neither a saved model folder (model.json) nor a run folder (model/model.json)")


def _versions() -> dict[str, str]:
    out = {"modalfuse": __version__, "python": platform.python_version()}
    for name in DEPENDENCIES:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            pass
    return out


def _data_description(run: Optional[Path], data_files: Optional[list[str | Path]]) -> dict[str, Any]:
    """What the model was trained on: the run's data section, a built-in dataset's published checksums, local files' SHA-256."""
    desc: dict[str, Any] = {}
    files: dict[str, str] = {}
    if run is not None and (run / "config.yaml").exists():
        cfg = yaml.safe_load((run / "config.yaml").read_text()) or {}
        data = cfg.get("data", {}) or {}
        desc["config"] = data
        if data.get("dataset"):
            try:
                from ..datasets import dataset_info

                info = dataset_info(data["dataset"])
                desc["dataset"] = {"name": info.name, "description": info.description, "reference": info.reference, "licence": info.licence}
                for folder, remotes in info.folders.items():
                    for remote in remotes:
                        files[f"{folder}/{remote.path}"] = remote.sha256
            except ModalfuseError:
                pass
        for key in ("train", "val", "test"):
            if data.get(key) and Path(data[key]).is_file():
                files[str(data[key])] = sha256_file(Path(data[key]))
        if (run / "train_report.json").exists():
            desc["train_report"] = {k: v for k, v in json.loads((run / "train_report.json").read_text()).items() if k != "skipped"}
    for f in data_files or []:
        if Path(f).is_file():
            files[str(f)] = sha256_file(Path(f))
    if files:
        desc["sha256"] = files
    return desc


def subset_metrics(model, data: Any) -> list[dict[str, Any]]:
    """Metrics of ``model`` on labelled ``data`` for every non-empty subset of its modalities (others masked off)."""
    features = model.featurize(data)
    names = list(model.preprocessors)
    rows = []
    for k in range(len(names), 0, -1):
        for subset in itertools.combinations(names, k):
            masks = {n: n in subset for n in names}
            metrics = model.evaluate(features, masks=masks)
            rows.append({"modalities": list(subset), **{key: (float(v) if isinstance(v, float) else v) for key, v in metrics.items()}})
    return rows


def export_bundle(
    source: Any,
    dest: str | Path,
    *,
    eval_data: Any = None,
    eval_name: Optional[str] = None,
    data_files: Optional[list[str | Path]] = None,
    onnx: bool = False,
) -> Path:
    """Write a bundle for ``source`` (a fitted MultimodalModel, a saved model folder or a run folder).

    ``dest`` ending in ``.tar.gz`` gives an archive, anything else a directory. ``eval_data``
    (labelled) adds metrics for every modality combination to the card; ``onnx`` adds
    ``model.onnx`` (checked against PyTorch when onnxruntime is installed).
    """
    from ..api import MultimodalModel

    dest = Path(dest)
    run = None
    with tempfile.TemporaryDirectory(prefix="modalfuse-bundle-") as tmp:
        folder = Path(tmp) / "bundle"
        if isinstance(source, MultimodalModel):
            model = source
            model.save(folder)
        else:
            model_dir, run = find_model_dir(source)
            shutil.copytree(model_dir, folder)
            model = MultimodalModel.load(folder)
        for stray in folder.iterdir():  # only the files save() writes
            if stray.name not in MODEL_FILES:
                stray.unlink() if stray.is_file() else shutil.rmtree(stray)
        card: dict[str, Any] = {
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "format": CARD_FORMAT,
            "task": model.task,
            "target": model.target,
            "classes": model.target_encoder.classes if model.task == "classification" else None,
            "modalities": [m.model_dump(mode="json") for m in model.modalities],
            "model": model.model_config.model_dump(mode="json"),
            "recipes": [r.model_dump(mode="json") for r in model.recipes],
            "training": {"config": model.train_config.model_dump(mode="json"), "temperature": model.temperature},
            "versions": _versions(),
            "data": _data_description(run, data_files),
            "lineage": lineage_of(run),
        }
        if run is not None and (run / "summary.json").exists():
            summary = json.loads((run / "summary.json").read_text())
            if "test" in summary:
                card["training"]["test_metrics"] = summary["test"]
        if eval_data is not None:
            card["evaluation"] = {"data": eval_name or (str(eval_data) if isinstance(eval_data, (str, Path)) else "in-memory table"),
                                  "by_modalities": subset_metrics(model, eval_data)}
        if onnx:
            from .onnx import export_onnx

            card["onnx"] = export_onnx(model, folder / "model.onnx")
        (folder / CARD).write_text(json.dumps(card, indent=2, default=str))
        write_manifest(folder)
        if is_archive(dest):
            dest.parent.mkdir(parents=True, exist_ok=True)
            with tarfile.open(dest, "w:gz") as tar:
                for path in sorted(folder.iterdir()):
                    tar.add(path, arcname=path.name, recursive=False)
        else:
            if dest.exists() and any(dest.iterdir()):
                raise BundleError(f"{dest} exists and is not empty; choose a new folder")
            dest.mkdir(parents=True, exist_ok=True)
            for path in folder.iterdir():
                shutil.copy2(path, dest / path.name)
    return dest


def verify_bundle(folder: str | Path) -> dict[str, Any]:
    """Check every file against ``manifest.json``; any missing, extra or altered file raises BundleError."""
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        raise BundleError(f"{folder} is not a model bundle: {MANIFEST} is missing")
    manifest = verify_manifest(folder, BundleError, required=True)
    files = manifest["files"]
    extra = sorted(p.name for p in folder.iterdir() if p.name != MANIFEST and p.name not in files)
    if extra:
        raise BundleError(f"bundle holds files not in its manifest: {extra}")
    for required in ("model.json", "preprocessors.json", "weights.safetensors", "train.json"):
        if required not in files:
            raise BundleError(f"bundle lacks {required}")
    return manifest


def safe_extract(archive: str | Path, dest: Path) -> None:
    """Extract a bundle archive, refusing absolute paths, ``..``, links, devices and nested folders."""
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError) as err:
        raise BundleError(f"{archive}: not a readable tar archive ({err})") from None
    with tar:
        members = tar.getmembers()
        for m in members:
            name = m.name
            parts = PurePosixPath(name).parts
            if name.startswith(("/", "\\")) or PurePosixPath(name).is_absolute() or (len(name) > 1 and name[1] == ":"):
                raise BundleError(f"{archive}: refusing archive member with an absolute path: {name!r}")
            if ".." in parts or "\\" in name:
                raise BundleError(f"{archive}: refusing archive member that escapes the folder (path traversal): {name!r}")
            if not m.isfile():
                raise BundleError(f"{archive}: refusing archive member {name!r}: only plain files are allowed")
            if len([p for p in parts if p != "."]) != 1:
                raise BundleError(f"{archive}: refusing archive member {name!r}: bundles hold files at the top level only")
        dest.mkdir(parents=True, exist_ok=True)
        for m in members:
            src = tar.extractfile(m)
            target = dest / PurePosixPath(m.name).name
            with src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)


def read_card(folder: Path) -> dict[str, Any]:
    """``card.json`` of a verified bundle; a card of a later format, or from a newer major modalfuse, is refused."""
    if not (folder / CARD).exists():
        return {}
    try:
        card = json.loads((folder / CARD).read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise BundleError(f"{folder / CARD}: not valid JSON ({err})") from None
    if not isinstance(card, dict):
        raise BundleError(f"{folder / CARD}: expected a JSON object")
    fmt = card.get("format", CARD_FORMAT)
    if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt < 1:
        raise BundleError(f"{folder / CARD}: format: expected a whole number ≥ 1, got {fmt!r}")
    if fmt > CARD_FORMAT:
        raise BundleError(f"{folder / CARD}: card format {fmt} is newer than this modalfuse reads ({CARD_FORMAT}); upgrade modalfuse")
    versions = card.get("versions") or {}
    if isinstance(versions, dict) and "modalfuse" in versions:
        check_written_by(versions["modalfuse"], folder / CARD, BundleError)
    return card


class Bundle:
    """A verified, loaded bundle: the model, its card and where it was read from."""

    def __init__(self, model, card: dict[str, Any], path: Path, folder: Path) -> None:
        self.model, self.card, self.path, self.folder = model, card, path, folder


def load_bundle(path: str | Path) -> Bundle:
    """Verify and load a bundle directory or ``.tar.gz`` archive."""
    from ..api import MultimodalModel

    path = Path(path)
    if not path.exists():
        raise BundleError(f"bundle {path} not found")
    if path.is_dir():
        verify_bundle(path)
        folder = path
        card = read_card(folder)
        return Bundle(MultimodalModel.load(folder), card, path, folder)
    with tempfile.TemporaryDirectory(prefix="modalfuse-bundle-") as tmp:
        folder = Path(tmp)
        safe_extract(path, folder)
        verify_bundle(folder)
        card = read_card(folder)
        model = MultimodalModel.load(folder)
    return Bundle(model, card, path, path)
