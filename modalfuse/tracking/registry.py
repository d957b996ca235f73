"""An MLflow model registry for bundles: ``modalfuse export --register NAME`` and ``modalfuse serve models:/NAME/VERSION``.

A registered version is the bundle folder (every file, its manifest included) logged as the artefact ``bundle`` of an
MLflow run: the training run's child when the run folder has RUN/tracking.json in the same store, else a run of its
own. The version's tags carry the card's lineage (data SHA-256, config SHA-256, library versions, git commit, parent
run) as JSON, so that the registry and the card agree by construction; serving downloads the version and verifies
the bundle's manifest like any other bundle.
"""
from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any, Optional

from ..errors import ModalfuseError
from .loggers import experiment_id, tracking_uri

MODELS_URI = re.compile(r"^models:/(?P<name>[^/]+)/(?P<version>\d+|latest)$")


class RegistryError(ModalfuseError):
    """The registry cannot be reached, or holds no such model version."""


def _client(uri: Optional[str]):
    try:
        from mlflow.tracking import MlflowClient
    except ModuleNotFoundError:
        raise RegistryError("the model registry needs MLflow; pip install 'modalfuse[tracking]'") from None
    store, artifacts = tracking_uri(uri)
    return MlflowClient(tracking_uri=store, registry_uri=store), store, artifacts


def register_bundle(bundle: str | Path, name: str, uri: Optional[str] = None) -> dict[str, Any]:
    """Add ``bundle`` (folder or .tar.gz) to the registry as a new version of ``name``; returns what was registered."""
    from ..serve.bundle import CARD, is_archive, verify_bundle

    with tempfile.TemporaryDirectory(prefix="modalfuse-register-") as tmp:
        folder = Path(bundle)
        if is_archive(folder):
            from ..serve.bundle import safe_extract

            folder = Path(tmp) / "bundle"
            safe_extract(bundle, folder)
        verify_bundle(folder)
        card = json.loads((folder / CARD).read_text())
        lineage = {"data_sha256": card.get("data", {}).get("sha256", {}), "versions": card.get("versions", {}),
                   **card.get("lineage", {})}
        client, store, artifacts = _client(uri)
        parent = (lineage.get("parent_run") or {})
        same_store = parent.get("tracking_uri") == store
        experiment = parent["experiment_id"] if same_store else experiment_id(client, artifacts)
        tags = {"mlflow.parentRunId": parent["run_id"]} if same_store else {}
        run = client.create_run(experiment, run_name=f"register-{name}", tags={**tags, "modalfuse.kind": "bundle"})
        client.log_artifacts(run.info.run_id, str(folder), "bundle")
        client.log_dict(run.info.run_id, lineage, "lineage.json")
        client.set_terminated(run.info.run_id)
        try:
            client.get_registered_model(name)
        except Exception:  # MlflowException RESOURCE_DOES_NOT_EXIST; any other problem resurfaces below
            client.create_registered_model(name, description="modalfuse bundle")
        version_tags = {"modalfuse.data_sha256": json.dumps(lineage["data_sha256"], sort_keys=True),
                        "modalfuse.lineage": json.dumps(lineage, sort_keys=True, default=str)[:4900],
                        "modalfuse.task": str(card.get("task"))}
        version = client.create_model_version(name, f"{run.info.artifact_uri}/bundle", run.info.run_id, tags=version_tags)
    return {"name": name, "version": int(version.version), "run_id": run.info.run_id, "tracking_uri": store,
            "parent_run": parent.get("run_id") if same_store else None, "lineage": lineage}


def resolve_models_uri(uri: str, tracking: Optional[str] = None, dest: Optional[Path] = None) -> tuple[Path, dict[str, Any]]:
    """Download ``models:/NAME/VERSION`` (or ``/latest``) into ``dest`` (a temporary folder by default): (bundle folder, version info)."""
    match = MODELS_URI.match(uri)
    if not match:
        raise RegistryError(f"{uri}: expected models:/NAME/VERSION (a number, or latest)")
    client, store, _ = _client(tracking)
    name, version = match["name"], match["version"]
    try:
        if version == "latest":
            versions = client.search_model_versions(f"name='{name}'")
            if not versions:
                raise RegistryError(f"{uri}: the registry at {store} has no model named {name!r}")
            version = str(max(int(v.version) for v in versions))
        info = client.get_model_version(name, version)
        source = client.get_model_version_download_uri(name, version)
    except RegistryError:
        raise
    except Exception as err:
        raise RegistryError(f"{uri}: not in the registry at {store} ({str(err).splitlines()[0][:160]})") from None
    import mlflow.artifacts

    dest = Path(dest or tempfile.mkdtemp(prefix="modalfuse-model-"))
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(dest)))
    return local, {"name": name, "version": int(info.version), "run_id": info.run_id, "tags": dict(info.tags)}


def is_models_uri(text: str) -> bool:
    return str(text).startswith("models:/")
