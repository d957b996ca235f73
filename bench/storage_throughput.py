"""Benchmark: disk storage against in-memory storage on sets that fit in memory, side by side in one run.

Sets: spoken + written digits from real files (FSDD WAV recordings, optdigits images written as PNG files, both
read through a CSV of paths), and the 6-view handwritten digits (six feature vectors). Each model trains a fixed
number of epochs (no validation split, so both paths see the same rows) with ``data.storage: memory``, ``disk``
(batches gathered in the training process) and ``disk`` with 2 DataLoader workers; training samples/s is measured
over epochs 2.. (epoch 1 also starts the loader workers) and over all epochs, and test accuracy is reported.
First-time decoding (disk shards, no cache) of the spoken digits table is timed with 0, 1 and 2 decode workers.

    .venv/bin/python bench/storage_throughput.py            # writes docs/results/storage_throughput.md
    .venv/bin/python bench/storage_throughput.py --quick    # 1 seed, 2 epochs, not written
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_DIR, default_data_dir, publish, run_header  # noqa: E402

import numpy as np  # noqa: E402

SPOKEN = {
    "audio": {"dim": 64, "options": {"widths": [8, 16, 32], "n_mels": 32, "hop_ms": 20.0, "dropout": 0.1}},
    "image": {"dim": 64, "options": {"widths": [16, 32, 64], "dropout": 0.1}},
}


def spoken_tables(data_dir: str, folder: Path) -> tuple[Path, Path, list[dict]]:
    """The spoken_digits dataset with each image written as an 8-bit PNG file; CSVs of file paths."""
    from PIL import Image

    from modalfuse.datasets import load_dataset

    ds = load_dataset("spoken_digits", data_dir=data_dir, download=False, seed=0)
    paths = {}
    for split, frame in (("train", ds.train), ("test", ds.test)):
        frame = frame.copy()
        names = []
        for i, img in enumerate(frame["image"]):
            name = f"{split}_{i}.png"
            Image.fromarray(np.round(np.asarray(img) * 255).astype(np.uint8)).save(folder / name)
            names.append(name)
        frame["image"] = names
        paths[split] = folder / f"{split}.csv"
        frame.to_csv(paths[split], index=False)
    mods = []
    for m in ds.modalities:
        d = m.model_dump()
        d["encoder"] = {"name": None, **SPOKEN[m.name]}
        mods.append(d)
    return paths["train"], paths["test"], mods


def handwritten_frames(data_dir: str):
    from modalfuse.datasets import load_dataset

    ds = load_dataset("handwritten", data_dir=data_dir, download=False)
    mods = [{**m.model_dump(), "encoder": {"name": None, "dim": 64, "options": {"hidden": [256], "dropout": 0.2}}} for m in ds.modalities]
    return ds.train, ds.test, mods


def fit_once(mods, train, test, storage, workers, epochs, seed, run_dir, lr, batch):
    from modalfuse import MultimodalModel

    model = MultimodalModel(
        mods, "label", model={"fusion": {"name": "concat", "dim": 128}, "head_hidden": 128},
        train={"max_epochs": epochs, "batch_size": batch, "lr": lr, "val_fraction": 0.0, "patience": 0, "progress": False, "seed": seed,
               "workers": workers},
        task="classification", storage=storage, cache_dir=str(run_dir / "cache"),
    )
    model.fit(train, run_dir=run_dir / "run")
    with open(run_dir / "run" / "metrics.csv") as fh:
        cumulative = [float(r["seconds"]) for r in csv.DictReader(fh)]
    per_epoch = np.diff([0.0, *cumulative])
    rows = model.reports["train"].rows_used
    acc = model.evaluate(test)["accuracy"]
    steady = rows * (len(per_epoch) - 1) / per_epoch[1:].sum() if len(per_epoch) > 1 else float("nan")
    return {"all": rows * len(per_epoch) / per_epoch.sum(), "steady": steady, "acc": acc, "rows": rows}


def decode_times(train_csv: Path, mods, repeats: int) -> dict[int, list[float]]:
    from modalfuse.config import ModalityConfig
    from modalfuse.data import TargetEncoder, make_preprocessor
    from modalfuse.data.disk import featurize_disk

    def once(workers: int) -> float:
        pres = {m["name"]: make_preprocessor(ModalityConfig.model_validate(m)) for m in mods}
        t = time.perf_counter()
        featurize_disk(str(train_csv), pres, TargetEncoder("classification"), "label", fit=True, workers=workers, cache=None)
        return time.perf_counter() - t

    once(2)  # warm-up: the page cache holds the files and the decode fork server is running
    times: dict[int, list[float]] = {0: [], 1: [], 2: []}
    for _ in range(repeats):
        for w in (1, 2, 0):
            times[w].append(once(w))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=default_data_dir())
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs-spoken", type=int, default=5)
    parser.add_argument("--epochs-handwritten", type=int, default=20)
    parser.add_argument("--decode-repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs_spoken, args.epochs_handwritten, args.decode_repeats = 1, 2, 3, 1
    out = args.out or (None if args.quick else str(RESULTS_DIR / "storage_throughput.md"))
    import torch

    torch.set_num_threads(args.threads)
    load_start, started = os.getloadavg(), time.time()
    tmp = Path(tempfile.mkdtemp(prefix="modalfuse-throughput-"))
    spoken_train, spoken_test, spoken_mods = spoken_tables(args.data_dir, tmp)
    hw_train, hw_test, hw_mods = handwritten_frames(args.data_dir)
    sets = [
        ("spoken + written digits (files)", spoken_mods, str(spoken_train), str(spoken_test), args.epochs_spoken, 3e-3, 64),
        ("6-view handwritten (vectors)", hw_mods, hw_train, hw_test, args.epochs_handwritten, 1e-3, 64),
    ]
    variants = [("memory", "memory", 0), ("disk, in-process batches", "disk", 0), ("disk, 2 loader workers", "disk", 2)]
    results: dict[tuple[str, str], list[dict]] = {}
    for name, mods, train, test, epochs, lr, batch in sets:
        for seed in range(args.seeds):
            for label, storage, workers in variants:  # side by side: every variant for one seed before the next seed
                run = tmp / f"{abs(hash((name, label, seed)))}"
                r = fit_once(mods, train, test, storage, workers, epochs, seed, run, lr, batch)
                results.setdefault((name, label), []).append(r)
                print(f"  [{name} | {label}] seed {seed}: {r['steady']:.0f} samples/s (epochs 2..), {r['all']:.0f} (all), acc {100 * r['acc']:.2f} %", flush=True)
    decode = decode_times(spoken_train, spoken_mods, args.decode_repeats)
    load_end = os.getloadavg()

    def fmt(values, digits=0):
        return f"{statistics.fmean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else f"{values[0]:.{digits}f}"

    lines = [
        "# Disk storage against in-memory storage: training throughput and first-time decoding",
        "",
        *run_header(args.threads, started, load_start, load_end),
        f"- seeds: {', '.join(map(str, range(args.seeds)))}; epochs: spoken digits {args.epochs_spoken}, handwritten {args.epochs_handwritten}; no validation split",
        "- the variants run interleaved (all three for a seed, then the next seed), so that load changes hit them alike",
        "",
        "Training samples/s (mean ± std over seeds) over epochs 2.. and over all epochs (epoch 1 includes starting the loader's "
        "worker processes), the ratio of the steady rate to the in-memory one, and test accuracy. Spoken digits: FSDD audio "
        "(8 kHz, 1 s) + 16×16 optdigits images from PNG files, audio CNN 8/16/32 and image CNN 16/32/64, concat fusion; "
        "handwritten: six vector views, MLP 256 per view, concat fusion.",
        "",
        "| set | storage | samples/s (epochs 2..) | vs memory | samples/s (all epochs) | test accuracy % |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, *_ in sets:
        base = statistics.fmean(r["steady"] for r in results[(name, "memory")])
        for label, _, _ in variants:
            rs = results[(name, label)]
            steady = [r["steady"] for r in rs]
            ratio = statistics.fmean(steady) / base
            lines.append(f"| {name} | {label} | {fmt(steady)} | {100 * ratio:.0f} % | {fmt([r['all'] for r in rs])} | "
                         f"{fmt([100 * r['acc'] for r in rs], 2)} |")
    rows = spoken_train.read_text().count("\n") - 1
    d1, d2 = statistics.median(decode[1]), statistics.median(decode[2])
    lines += [
        "",
        f"First-time decoding of the spoken digits training table ({rows:,} rows: a WAV and a PNG each) into disk shards, "
        f"no cache, median of {args.decode_repeats} (after one warm-up pass that fills the page cache and starts the decode fork server):",
        "",
        "| decode workers | seconds (median) | all runs | rows/s | speed-up vs 1 worker |",
        "|---:|---:|---|---:|---:|",
    ]
    for w in (0, 1, 2):
        med = statistics.median(decode[w])
        lines.append(f"| {w}{' (in process)' if w == 0 else ''} | {med:.2f} | {', '.join(f'{t:.2f}' for t in decode[w])} | {rows / med:.0f} | {d1 / med:.2f}× |")
    lines += ["", f"2 workers against 1: **{d1 / d2:.2f}×**."]
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    publish(lines, out)


if __name__ == "__main__":
    main()
