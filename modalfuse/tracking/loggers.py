"""``train.logger``: which Lightning logger records a run besides its metrics.csv, and where.

csv (default) keeps only the run folder's metrics.csv; tensorboard writes event files under RUN/tensorboard;
mlflow logs the parameters and per-epoch metrics to an MLflow tracking store (``train.tracking_uri``, else
``$MLFLOW_TRACKING_URI``, else a local store in ``./mlruns``) and records the MLflow run id in RUN/tracking.json, so
that artefacts logged after training and a bundle registered later point back to it.

The local store is SQLite (``mlruns/mlflow.db``, artefacts in ``mlruns/artifacts``), not MLflow's plain file store:
MLflow 3 keeps that store in maintenance mode and refuses it unless MLFLOW_ALLOW_FILE_STORE=true is set (a ``file:``
URI still works with that variable). It needs no server; the same folder serves the model registry.
"""
from __future__ import annotations

import json
import os
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


def make_logger(cfg, run_dir: Optional[Path]) -> Any:
    """The Lightning logger for ``cfg.logger`` (False for csv: metrics.csv is written by the trainer's own callback)."""
    if cfg.logger == "csv" or run_dir is None:
        return False
    run_dir = Path(run_dir)
    try:
        if cfg.logger == "tensorboard":
            from lightning.pytorch.loggers import TensorBoardLogger

            return TensorBoardLogger(str(run_dir), name="tensorboard", version="", default_hp_metric=False)
        from lightning.pytorch.loggers import MLFlowLogger

        uri, artifacts = tracking_uri(cfg.tracking_uri)
        logger = MLFlowLogger(experiment_name=os.environ.get("MLFLOW_EXPERIMENT_NAME", "modalfuse"),
                              run_name=run_dir.name, tracking_uri=uri, artifact_location=artifacts)
    except ModuleNotFoundError as err:
        extra = "tracking" if cfg.logger == "mlflow" else "tracking (tensorboard)"
        raise ConfigError(f"train.logger: {cfg.logger} needs {err.name}; pip install 'modalfuse[{extra}]'") from None
    logger.log_hyperparams(_flat(cfg.model_dump(mode="json"), "train"))
    run_dir.mkdir(parents=True, exist_ok=True)  # an ensemble member's folder (RUN/member<i>) does not exist yet
    (run_dir / TRACKING).write_text(json.dumps({"logger": "mlflow", "tracking_uri": logger._tracking_uri,
                                                "experiment_id": logger.experiment_id, "run_id": logger.run_id}, indent=2))
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
