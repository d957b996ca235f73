"""Choose the handwritten recipe by cross-validation on the TRAIN split only (the test split is never read).

Each candidate is trained with ``val_fraction=0`` and a fixed epoch count on K-1 folds of the 1,600 training
rows and scored on the held-out fold (stratified K-fold, fixed fold seed); the score is the accuracy over all
out-of-fold predictions (1,600 of them). The base recipe is a row of bench/configs/handwritten.yaml (--method, default
"fused concat"); candidates are JSON changes to it, by section (``encoder``, ``fusion``, ``model``, ``train``; the
keys given replace the recipe's), as bench/common.py's ``recipe_model`` reads them:

    .venv/bin/python bench/tune_handwritten.py '{"train": {"max_epochs": 40}}' '{"model": {"dropout": 0.3}}'
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import default_data_dir, recipe_model  # noqa: E402  (sets the environment first)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402

from modalfuse.datasets import load_dataset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("candidates", nargs="+", help="JSON changes to the recipe, by section")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--fold-seed", type=int, default=0)
    parser.add_argument("--model-seed", type=int, default=0)
    parser.add_argument("--method", default="fused concat", help="the row of bench/configs/handwritten.yaml to start from")
    parser.add_argument("--data-dir", default=default_data_dir())
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ds = load_dataset("handwritten", data_dir=args.data_dir, download=False)
    train = ds.train.reset_index(drop=True)
    y = train[ds.target].to_numpy()
    folds = list(StratifiedKFold(args.folds, shuffle=True, random_state=args.fold_seed).split(train, y))
    for text in args.candidates:
        change = json.loads(text)
        t0 = time.perf_counter()
        correct, losses = 0, []
        for k, (tr, va) in enumerate(folds):
            model = recipe_model("handwritten", args.method, ds, args.model_seed + k, train={"val_fraction": 0.0}, change=change)
            model.fit(train.iloc[tr])
            r = model.evaluate(train.iloc[va])
            correct += round(r["accuracy"] * r["n"])
            losses.append(r["log_loss"])
        acc = correct / len(train)
        print(f"cv_acc={acc:.4f} cv_logloss={np.mean(losses):.4f} ({time.perf_counter() - t0:.0f} s)  {json.dumps(json.loads(text))}", flush=True)


if __name__ == "__main__":
    main()
