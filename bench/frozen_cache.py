"""Benchmark: a frozen pretrained text encoder runs once per distinct text (women's clothing reviews, frozen MiniLM).

Three fits of the same model (MiniLM frozen, projected to 64, + the product table, concat fusion), same seed and
epochs: cached (the backbone's pooled outputs computed in epoch 1, looked up afterwards), uncached (encoder
option ``cache: false``: the backbone runs on every row every epoch), and cached again in a new model with the same
cache folder (epoch 1 reads the disk cache of the first run). Per-epoch seconds come from the run's metrics.csv;
test metrics show the three train the same model. A subset of the rows keeps MiniLM's CPU cost in bounds.

    .venv/bin/python bench/frozen_cache.py            # writes docs/results/frozen_cache.md
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_DIR, default_data_dir, publish, run_header  # noqa: E402

import numpy as np  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=default_data_dir())
    parser.add_argument("--train-rows", type=int, default=500)
    parser.add_argument("--test-rows", type=int, default=500)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(RESULTS_DIR / "frozen_cache.md"))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from modalfuse import MultimodalModel
    from modalfuse.datasets import load_dataset
    from modalfuse.encoders.frozen_cache import frozen_caches
    from modalfuse.encoders.pretrained_text import PretrainedText

    load_start, started = os.getloadavg(), time.time()
    ds = load_dataset("womens_clothing", data_dir=args.data_dir, download=False)
    train = ds.train.sample(n=min(args.train_rows, len(ds.train)), random_state=0).reset_index(drop=True)
    test = ds.test.sample(n=min(args.test_rows, len(ds.test)), random_state=0).reset_index(drop=True)
    tmp = Path(tempfile.mkdtemp(prefix="modalfuse-frozen-"))
    backbone_rows = [0]
    real = PretrainedText.pooled

    def counted(self, ids):
        backbone_rows[0] += len(ids)
        return real(self, ids)

    PretrainedText.pooled = counted

    def fit(label: str, cache: bool, run: str):
        mods = []
        for m in ds.modalities:
            d = m.model_dump()
            if m.kind == "text":
                d["options"] = {"kind": "text", "pretrained": "minilm", "max_tokens": args.max_tokens}
                d["encoder"] = {"name": "pretrained_text", "dim": 64, "options": {"freeze": True, "cache": cache}}
            else:
                d["encoder"] = {"name": "tabular_mlp", "dim": 64, "options": {"hidden": 64, "dropout": 0.1}}
            mods.append(d)
        model = MultimodalModel(
            mods, ds.target, model={"fusion": {"name": "concat", "dim": 64}, "head_hidden": 64, "dropout": 0.2},
            train={"max_epochs": args.epochs, "batch_size": 64, "lr": 1e-3, "val_fraction": 0.0, "patience": 0, "progress": False, "seed": 0},
            task="classification", cache_dir=str(tmp / "cache"), workers=0,
        )
        before = backbone_rows[0]
        t = time.perf_counter()
        model.fit(train, run_dir=tmp / run)
        fit_s = time.perf_counter() - t
        train_rows = backbone_rows[0] - before
        with open(tmp / run / "metrics.csv") as fh:
            per_epoch = np.diff([0.0, *[float(r["seconds"]) for r in csv.DictReader(fh)]])
        metrics = model.evaluate(test)
        proba = model.predict_proba(test)
        print(f"  [{label}] epochs {np.round(per_epoch, 1).tolist()} s, backbone rows in fit {train_rows}, acc {metrics['accuracy']:.4f}", flush=True)
        return {"label": label, "epochs": per_epoch, "fit": fit_s, "rows": train_rows, "metrics": metrics, "proba": proba,
                "cached": sum(len(c.memory) for c in frozen_caches(model.net))}

    runs = [fit("cached", True, "cached"), fit("uncached (cache: false)", False, "plain"), fit("cached, new run (disk cache)", True, "again")]
    load_end = os.getloadavg()
    text_cols = next(m.columns for m in ds.modalities if m.kind == "text")
    distinct = train[text_cols].fillna("").astype(str).agg("|".join, axis=1).nunique()
    ref = runs[1]["proba"]
    lines = [
        "# Frozen pretrained encoders run once: women's clothing reviews with frozen MiniLM",
        "",
        *run_header(args.threads, started, load_start, load_end),
        f"- seed 0; {args.epochs} epochs; batch 64; no validation split; {len(train):,} training rows sampled from the toolkit's val.csv "
        f"and {len(test):,} test rows from its test.csv (random_state 0); MiniLM (all-MiniLM-L6-v2, bundled) frozen, {args.max_tokens} tokens",
        "",
        "| run | epoch 1 s | epochs 2.. s (mean) | epochs 2.. / epoch 1 | backbone rows during fit | test accuracy % | test F1 % | max |Δ proba| vs uncached |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        e = r["epochs"]
        later = float(np.mean(e[1:])) if len(e) > 1 else float("nan")
        lines.append(f"| {r['label']} | {e[0]:.1f} | {later:.2f} | {100 * later / e[0]:.1f} % | {r['rows']:,} | "
                     f"{100 * r['metrics']['accuracy']:.2f} | {100 * r['metrics']['f1']:.2f} | {np.abs(r['proba'] - ref).max():.2e} |")
    lines += [
        "",
        f"The cached runs run the backbone once per distinct token row in epoch 1 (about {distinct:,} distinct reviews among "
        f"{len(train):,} rows) and never after; the uncached run runs it on every row of every epoch ({args.epochs} × {len(train):,}). "
        "The new run finds every training text in the disk cache written by the first (its epoch 1 costs what a later epoch does). "
        "Test rows go through the same cache at evaluation. Probabilities agree to float rounding (batches differ only in which "
        "rows are computed together).",
    ]
    shutil.rmtree(tmp, ignore_errors=True)
    publish(lines, args.out)


if __name__ == "__main__":
    main()
