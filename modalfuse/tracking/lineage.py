"""Lineage of a bundle: what it was trained from (config, code, parent run), next to the card's data checksums.

The card already holds the SHA-256 of the data files (``data.sha256``) and the library versions (``versions``);
this adds the SHA-256 of the run's resolved config, the git commit of the working directory (when it is a git
checkout; ``dirty`` when it has uncommitted changes) and the MLflow run that trained the model (RUN/tracking.json).
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Optional

from ..core.storage import sha256_file
from .loggers import run_info


def git_commit(folder: Path) -> Optional[dict[str, Any]]:
    """``{"commit", "dirty"}`` of the git checkout holding ``folder``, or None (no git, not a checkout)."""
    try:
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        status = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def lineage_of(run: Optional[Path]) -> dict[str, Any]:
    """The lineage section of a model card for a model trained in run folder ``run`` (None: a model saved elsewhere)."""
    out: dict[str, Any] = {"git": git_commit(Path.cwd())}
    if run is not None:
        run = Path(run)
        out["run_folder"] = str(run.resolve())
        if (run / "config.yaml").is_file():
            out["config_sha256"] = sha256_file(run / "config.yaml")
        info = run_info(run)
        if info:
            out["parent_run"] = {k: info[k] for k in ("tracking_uri", "experiment_id", "run_id")}
    return out
