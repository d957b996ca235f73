"""A training job run by tests/test_distributed.py in a fresh process: ``python distributed_job.py OUT.json DEVICES [RUN_DIR] [--disk]``.

With RUN_DIR, the run in that folder is resumed from its newest checkpoint (else a new run goes to ``run<DEVICES>``);
``--disk`` trains from on-disk shards (``data.storage: disk``).

Fits a small two-view model (dropout off, so that only the batch split differs between runs) with ``train.devices``
processes and writes the final metrics, the per-epoch validation losses and the class probabilities to OUT.json.
"""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = {"a": [f"a{i}" for i in range(6)], "b": [f"b{i}" for i in range(4)]}


def table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    frame = {c: rng.normal(size=n) + (y == i % 3) * 1.2 for i, c in enumerate(COLUMNS["a"])}
    frame.update({c: rng.normal(size=n) + (y == (i + 1) % 3) * 0.8 for i, c in enumerate(COLUMNS["b"])})
    return pd.DataFrame({**frame, "label": y})


def model(devices: int, strategy: str = "auto", storage: str = "memory"):
    from modalfuse.api import MultimodalModel

    mods = [{"name": m, "kind": "vector", "columns": cols, "encoder": {"dim": 8, "options": {"hidden": [16], "dropout": 0.0}}} for m, cols in COLUMNS.items()]
    train = {"max_epochs": 4, "batch_size": 32, "lr": 0.01, "patience": 0, "seed": 3, "progress": False,
             "threads": 1, "devices": devices, "strategy": strategy}
    return MultimodalModel(mods, "label", {"dropout": 0.0, "head_hidden": 16, "fusion": {"dim": 16}}, train, task="classification",
                           storage=storage, cache_dir="none")


def run(devices: int, run_dir: Path, strategy: str = "auto", resume: bool = False, storage: str = "memory") -> dict:
    m = model(devices, strategy, storage)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m.fit(table(320, 0), table(96, 1), run_dir=run_dir, resume=run_dir if resume else None)
    proba = m.predict_proba(table(64, 2))
    metrics = pd.read_csv(run_dir / "metrics.csv")
    return {"evaluate": m.evaluate(table(64, 2)), "val_loss": metrics["val_loss"].tolist(), "proba": proba.tolist(),
            "history": m.history, "warnings": [str(w.message) for w in caught if "sync_dist" in str(w.message)],
            "files": sorted(p.name for p in run_dir.iterdir())}


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--disk"]
    out, devices = Path(args[0]), int(args[1])
    resumed = len(args) > 2
    result = run(devices, Path(args[2]) if resumed else out.parent / f"run{devices}", resume=resumed,
                 storage="disk" if "--disk" in sys.argv else "memory")
    out.write_text(json.dumps(result, default=float))
