"""Data-parallel scaling on CPU: spoken-digit CNNs, 1 process x 1 thread against 2 processes x 1 thread (ddp_spawn, gloo).

Same global batch (the recipe's 64 and larger ones, --batch-sizes), seed and recipe as bench/configs/spoken_digits.yaml (its fused concat row), patience off so that every run
takes the same epochs. Throughput is training rows per second over epochs 1..E-1 (epoch 0 holds process start-up and
warm-up), read from each run's metrics.csv (epoch end times written by rank zero; validation included). Runs alternate
1, 2, 1, 2, ... so that a change in the machine's load hits both sides; the load average is recorded around each run.

    .venv/bin/python bench/distributed_scaling.py                # global batch 64, 128, 256; 2 repeats, 4 epochs; writes docs/results/distributed_scaling.md
    .venv/bin/python bench/distributed_scaling.py --quick        # 1 repeat, 3 epochs, prints only
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_DIR, command_line, default_data_dir, machine_info, publish, recipe_model  # noqa: E402


def fit(ds, processes: int, epochs: int, seed: int, batch_size: Optional[int] = None) -> dict:
    import pandas as pd

    model = recipe_model("spoken_digits", "fused concat", ds, seed, train={
        "max_epochs": epochs, "patience": 0, "threads": 1, "devices": processes, "strategy": "auto",
        **({"batch_size": batch_size} if batch_size else {})})
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as run:
        start = time.perf_counter()
        model.fit(ds.train, run_dir=run)
        wall = time.perf_counter() - start
        rows = pd.read_csv(Path(run) / "metrics.csv")
    n_train = model.reports["train"].rows_used
    if len(rows) < 2:
        return {}
    seconds = float(rows["seconds"].iloc[-1] - rows["seconds"].iloc[0])
    accuracy = model.evaluate(ds.test)["accuracy"]
    return {"processes": processes, "samples_per_s": n_train * (len(rows) - 1) / seconds, "epoch_s": seconds / (len(rows) - 1),
            "wall_s": wall, "accuracy": accuracy, "load": (load_before, os.getloadavg()[0]), "n_train": n_train}


def alone(job: tuple) -> float:
    """One 1-process run in a process of its own (for two at once: what the 2 cores give with no communication)."""
    import torch

    torch.set_num_threads(1)
    from modalfuse.datasets import load_dataset

    data_dir, epochs, seed, batch = job
    return fit(load_dataset("spoken_digits", data_dir=data_dir, download=False), 1, epochs, seed, batch)["samples_per_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=default_data_dir())
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--batch-sizes", default="64,128,256", help="global batches, comma-separated (the recipe has 64); each of 2 processes takes half")
    p.add_argument("--pairs", action=argparse.BooleanOptionalAction, default=True,
                   help="also run two independent 1-process runs at once (no communication): the 2 cores' ceiling")
    p.add_argument("--step-costs", action=argparse.BooleanOptionalAction, default=True,
                   help="also time one step alone, apart and under DDP in plain torch (bench/ddp_step_cost.py), per global batch")
    p.add_argument("--out", default=str(RESULTS_DIR / "distributed_scaling.md"))
    args = p.parse_args()
    if args.quick:
        args.repeats, args.epochs, args.out, args.pairs, args.step_costs = 1, 3, None, False, False
    import torch

    torch.set_num_threads(1)
    from modalfuse.datasets import load_dataset

    ds = load_dataset("spoken_digits", data_dir=args.data_dir, download=False)
    fit(ds, 1, 1, 0)  # decode and cache the audio once, outside the timings
    batches = [int(b) for b in args.batch_sizes.split(",")]
    results = []
    for batch in batches:
        for r in range(args.repeats):
            for processes in (1, 2):
                results.append({**fit(ds, processes, args.epochs, seed=r, batch_size=batch), "batch": batch, "repeat": r})
                print(f"batch {batch}, repeat {r}: {processes} process(es): {results[-1]['samples_per_s']:.1f} samples/s, "
                      f"load {results[-1]['load'][0]:.2f} -> {results[-1]['load'][1]:.2f}", file=sys.stderr, flush=True)
            if args.pairs:  # two independent 1-process runs at the same time: the machine's ceiling for 2 processes
                with multiprocessing.get_context("spawn").Pool(2) as pool:
                    pair = pool.map(alone, [(args.data_dir, args.epochs, r, batch)] * 2)
                results.append({"processes": "2 × 1 apart", "samples_per_s": sum(pair), "batch": batch, "repeat": r})
                print(f"batch {batch}, repeat {r}: two 1-process runs at once: {pair}", file=sys.stderr, flush=True)
    costs = {}
    if args.step_costs:
        from ddp_step_cost import step_costs

        costs = {batch: step_costs(batch, args.data_dir) for batch in batches}
        print(f"step costs: {costs}", file=sys.stderr, flush=True)
    info = machine_info(1)
    recipe_batch = recipe_model("spoken_digits", "fused concat", ds).train_config.batch_size
    lines = [
        "# Data-parallel scaling on CPU (spoken-digit CNNs)", "",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Command: `{command_line()}`.",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()) + ".",
        f"Recipe of bench/configs/spoken_digits.yaml (fused concat; its batch is {recipe_batch}), global batches "
        f"{', '.join(map(str, batches))}, {args.epochs} epochs, patience off; {results[0]['n_train']} training rows; "
        f"seeds 0..{args.repeats - 1} (one per repeat, both sides).",
        "Throughput: training rows per second over epochs 1..E-1 (validation included; epoch 0 excluded as start-up).",
        "2 processes: `train.devices: 2` (ddp_spawn, gloo), each with 1 torch thread; each takes half of every global batch.",
        "The load average (1 min) before and after each run is listed: with other work on the 2 cores, a ratio below 2 "
        "measures that contention as much as the method.", "",
        "| global batch | repeat | processes | samples/s | s/epoch | wall s (with start-up) | test accuracy | load before → after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for x in (x for x in results if "epoch_s" in x):
        lines.append(f"| {x['batch']} | {x['repeat']} | {x['processes']} | {x['samples_per_s']:.1f} | {x['epoch_s']:.2f} | {x['wall_s']:.1f} | "
                     f"{100 * x['accuracy']:.2f} % | {x['load'][0]:.2f} → {x['load'][1]:.2f} |")
    lines += ["", "| global batch | samples/s, 1 process | samples/s, 2 processes | ratio (per repeat) | ≥ 1.6 | "
              "two 1-process runs at once, summed / 1 process |", "|---|---|---|---|---|---|"]
    for batch in batches:
        one, two, apart = ([x for x in results if x["batch"] == batch and x["processes"] == k] for k in (1, 2, "2 × 1 apart"))
        speed1, speed2 = (statistics.mean(x["samples_per_s"] for x in v) for v in (one, two))
        ratios = ", ".join(f"{b['samples_per_s'] / a['samples_per_s']:.2f}" for a, b in zip(one, two))
        ceiling = ", ".join(f"{c['samples_per_s'] / a['samples_per_s']:.2f}" for a, c in zip(one, apart)) or "not run"
        lines.append(f"| {batch} | {speed1:.1f} | {speed2:.1f} | **{speed2 / speed1:.2f}** ({ratios}) | {speed2 / speed1 >= 1.6} | {ceiling} |")
    if args.pairs:
        lines += ["", "The last column is the machine's own ceiling for two processes: two 1-process runs of the same seed "
                  "started together, with no communication between them; the 2-process ratio can reach it only if DDP costs nothing."]
    if costs:
        from ddp_step_cost import table

        lines += ["", "Where a step's time goes (bench/ddp_step_cost.py, plain torch, same network; median ms a step over 20 "
                  "steps, the slower rank where two run):", "", *table(costs)]
    publish(lines, args.out)


if __name__ == "__main__":
    main()
