"""``train.logger``: which Lightning logger records a run besides its metrics.csv, and where.

csv (default) keeps only the run folder's metrics.csv; tensorboard writes event files under RUN/tensorboard;
mlflow logs the parameters and per-epoch metrics to an MLflow tracking store (``train.tracking_uri``, else
``$MLFLOW_TRACKING_URI``, else a local store in ``./mlruns``) and records the MLflow run id in RUN/tracking.json, so
that artefacts logged after training and a bundle registered later point back to it. A run that trains several
networks (a deep or weighted ensemble, RUN/member<i>) gets one MLflow run for the whole run folder (RUN/tracking.json,
``start_parent_run``) and one child run per member (RUN/member<i>/tracking.json): the bundle registered from it is the
child of the run-level record. A resumed run goes on logging into the MLflow run it started.

The local store is SQLite (``mlruns/mlflow.db``, artefacts in ``mlruns/artifacts``), not MLflow's plain file store:
MLflow 3 keeps that store in maintenance mode and refuses it unless MLFLOW_ALLOW_FILE_STORE=true is set (a ``file:``
URI still works with that variable). It needs no server; the same folder serves the model registry.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Optional

from ..errors import ConfigError

TRACKING = "tracking.json"


def tracking_uri(given: Optional[str] = None) -> tuple[str, Optional[str]]:
    """(MLflow store URI, artefact root for new experiments): the one given, $MLFLOW_TRACKING_URI, or ./mlruns."""
    uri = given or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri, None
    root = Path.cwd().resolve() / "mlruns"
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri()


def _resumable(run_dir: Path, uri: str) -> Optional[str]:
    """The MLflow run id recorded in RUN/tracking.json for this store (a resumed run logs into it), or None."""
    info = run_info(run_dir)
    return info["run_id"] if info and info.get("tracking_uri") == uri else None


def _write_info(run_dir: Path, uri: str, experiment_id: str, run_id: str, **extra: Any) -> dict[str, Any]:
    run_dir.mkdir(parents=True, exist_ok=True)  # an ensemble member's folder (RUN/member<i>) does not exist yet
    info = {"logger": "mlflow", "tracking_uri": uri, "experiment_id": experiment_id, "run_id": run_id, **extra}
    (run_dir / TRACKING).write_text(json.dumps(info, indent=2))
    return info


def _experiment_name() -> str:
    return os.environ.get("MLFLOW_EXPERIMENT_NAME", "modalfuse")


def experiment_id(client, artifacts: Optional[str], name: str = "modalfuse") -> str:
    """The id of MLflow experiment ``name`` in ``client``'s store, created (artefacts under ``artifacts``) when missing."""
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found else client.create_experiment(name, artifact_location=artifacts)


def start_parent_run(cfg, run_dir: Optional[Path], members: int) -> Optional[dict[str, Any]]:
    """The run-level MLflow run (RUN/tracking.json) of a run folder that trains ``members`` networks, whose runs are
    its children; None unless ``cfg.logger`` is mlflow, there are several members and this is rank zero. A resumed
    run keeps the one it had."""
    from ..train.distributed import is_rank_zero

    if cfg.logger != "mlflow" or run_dir is None or members < 2 or not is_rank_zero():
        return None
    run_dir = Path(run_dir)
    uri, artifacts = tracking_uri(cfg.tracking_uri)
    if _resumable(run_dir, uri) is not None:
        return run_info(run_dir)
    try:
        from mlflow.tracking import MlflowClient
    except ModuleNotFoundError as err:
        raise ConfigError(f"train.logger: mlflow needs {err.name}; pip install 'modalfuse[tracking]'") from None
    client = MlflowClient(tracking_uri=uri)
    experiment = experiment_id(client, artifacts, _experiment_name())
    run = client.create_run(experiment, run_name=run_dir.name, tags={"modalfuse.members": str(members)})
    for key, value in _flat(cfg.model_dump(mode="json"), "train").items():
        client.log_param(run.info.run_id, key, value)
    return _write_info(run_dir, uri, experiment, run.info.run_id, members=members)


def _parent_of(run_dir: Path) -> Optional[dict[str, Any]]:
    """For an ensemble member's folder RUN/member<i>: the run-level MLflow run of RUN (``start_parent_run``), or None."""
    info = run_info(run_dir.parent) if re.fullmatch(r"member\d+", run_dir.name) else None
    return info if info and "members" in info else None


def make_logger(cfg, run_dir: Optional[Path]) -> Any:
    """The Lightning logger for ``cfg.logger`` (False for csv: metrics.csv is written by the trainer's own callback).
    An ensemble member's MLflow run is a child of its run folder's run-level one."""
    if cfg.logger == "csv" or run_dir is None:
        return False
    run_dir = Path(run_dir)
    parent = _parent_of(run_dir)
    try:
        if cfg.logger == "tensorboard":
            from lightning.pytorch.loggers import TensorBoardLogger

            return TensorBoardLogger(str(run_dir), name="tensorboard", version="", default_hp_metric=False)
        from lightning.pytorch.loggers import MLFlowLogger

        uri, artifacts = tracking_uri(cfg.tracking_uri)
        resumed = _resumable(run_dir, uri)
        tags = {"mlflow.parentRunId": parent["run_id"]} if parent else None
        user_uri = os.environ.get("MLFLOW_TRACKING_URI")
        logger = MLFlowLogger(experiment_name=_experiment_name(), run_name=run_dir.name, tracking_uri=uri,
                              artifact_location=artifacts, tags=tags, run_id=resumed)
        logger.experiment  # starts the run; MLflow also sets $MLFLOW_TRACKING_URI to its store, undone below
        if user_uri is None:  # else a later run of this process, from another folder, would log into this store
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = user_uri
    except ModuleNotFoundError as err:
        extra = "tracking" if cfg.logger == "mlflow" else "tracking (tensorboard)"
        raise ConfigError(f"train.logger: {cfg.logger} needs {err.name}; pip install 'modalfuse[{extra}]'") from None
    if resumed is None:  # a resumed run has its parameters (MLflow refuses to change one, e.g. a new world size)
        logger.log_hyperparams(_flat(cfg.model_dump(mode="json"), "train"))
    _write_info(run_dir, uri, logger.experiment_id, logger.run_id,
                **({"parent_run_id": parent["run_id"]} if parent else {}))
    return logger


def _flat(value: Any, prefix: str) -> dict[str, Any]:
    """A nested mapping as ``a.b.c`` keys (MLflow parameters are flat)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}"))
        return out
    return {prefix: value}


def run_info(run_dir: Path) -> Optional[dict]:
    """RUN/tracking.json (the MLflow run of a training), or None."""
    path = Path(run_dir) / TRACKING
    return json.loads(path.read_text()) if path.is_file() else None


def log_run_artifacts(run_dir: Path) -> None:
    """After training: the run's config, summary, metrics and model folder as artefacts of its MLflow run."""
    info = run_info(run_dir)
    if not info:
        return
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=info["tracking_uri"])
    for name in ("config.yaml", "summary.json", "metrics.csv"):
        if (run_dir / name).is_file():
            client.log_artifact(info["run_id"], str(run_dir / name))
    if (run_dir / "model").is_dir():
        client.log_artifacts(info["run_id"], str(run_dir / "model"), "model")
    summary = run_dir / "summary.json"
    if summary.is_file():
        test = json.loads(summary.read_text()).get("test") or {}
        for k, v in test.items():
            if isinstance(v, (int, float)):
                client.log_metric(info["run_id"], f"test_{k}", float(v))
