"""Choose the CUB recipe by 5-fold cross-validation on the training rows of split seed 0 (test never read).

    python bench/tune_cub.py '{"dropout": 0.5}' '{"max_epochs": 60}'

Each candidate is a JSON object of overrides; printed: out-of-fold accuracy over the 480 training rows.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from sklearn.model_selection import StratifiedKFold

from modalfuse import MultimodalModel
from modalfuse.config import ModalityConfig
from modalfuse.datasets import load_dataset

BASE = {"fusion": "concat", "encoder": "vector_mlp", "dim": 64, "hidden": [256], "enc_dropout": 0.5, "dropout": 0.3, "head_hidden": 0,
        "max_epochs": 30, "batch_size": 32, "lr": 1e-3, "weight_decay": 1e-3, "modality_dropout": 0.0, "ensemble": 1}


def build(ds, r: dict, seed: int) -> MultimodalModel:
    options = {"hidden": r["hidden"], "dropout": r["enc_dropout"]} if r["encoder"] == "vector_mlp" else {}
    mods = [ModalityConfig(name=m.name, kind=m.kind, encoder={"name": r["encoder"], "dim": r["dim"], "options": options}) for m in ds.modalities]
    return MultimodalModel(
        mods, ds.target, model={"fusion": {"name": r["fusion"]}, "head_hidden": r["head_hidden"], "dropout": r["dropout"]},
        train={"max_epochs": r["max_epochs"], "batch_size": r["batch_size"], "lr": r["lr"], "weight_decay": r["weight_decay"],
               "val_fraction": 0.0, "patience": 0, "seed": seed, "progress": False, "modality_dropout": r["modality_dropout"], "ensemble": r["ensemble"]},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("candidates", nargs="+")
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    ds = load_dataset("cub", data_dir=args.data_dir, seed=0)
    train = ds.train.reset_index(drop=True)
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(train, train[ds.target]))
    for text in args.candidates:
        r = {**BASE, **json.loads(text)}
        t0, correct = time.perf_counter(), 0
        for k, (tr, va) in enumerate(folds):
            model = build(ds, r, seed=k)
            model.fit(train.iloc[tr])
            res = model.evaluate(train.iloc[va])
            correct += round(res["accuracy"] * res["n"])
        print(f"cv_acc={correct / len(train):.4f} ({time.perf_counter() - t0:.0f} s) {text}", flush=True)


if __name__ == "__main__":
    main()
