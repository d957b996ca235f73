"""Checkpoint overhead on Davis: time spent writing the epoch-end checkpoints against the epoch time.

Trains examples/davis.yaml for a few epochs with ``modalfuse train`` twice, with checkpoints (the default) and
with ``train.checkpoint: false``. The overhead is the time the checkpoint callback spent writing (measured inside
the run, so other load on the machine affects both sides alike) over the training time without it; the
difference between the two runs' training times is given too, but on a shared machine it is mostly noise.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def train(config: dict, work: Path, name: str, data_dir: str) -> dict:
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(REPO), "MODALFUSE_CACHE": str(work / "cache"), "MPLCONFIGDIR": str(work / "mpl")}
    subprocess.run([sys.executable, "-m", "modalfuse.cli", "train", str(path), "--run-dir", str(work / name), "--data-dir", data_dir],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    (run,) = (work / name).iterdir()
    training = json.loads((run / "summary.json").read_text())["training"]
    folders = sorted((run / "checkpoints").iterdir()) if (run / "checkpoints").is_dir() else []
    training["checkpoint_mb"] = round(sum(f.stat().st_size for c in folders[-1:] for f in c.iterdir()) / 1e6, 2)
    return training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", default=str((REPO / ".." / "shared" / "data").resolve()))
    parser.add_argument("--out", default=str(REPO / "docs" / "results" / "checkpoint_overhead.md"))
    args = parser.parse_args()
    config = yaml.safe_load((REPO / "examples" / "davis.yaml").read_text())
    config["train"].update(max_epochs=args.epochs, threads=args.threads, progress=False, warmup_epochs=1)
    started, load0 = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="modalfuse-ckpt-") as tmp:
        with_ckpt = train(config, Path(tmp), "with", args.data_dir)
        config["train"]["checkpoint"] = False
        without = train(config, Path(tmp), "without", args.data_dir)
    writing = with_ckpt["checkpoint_seconds"]
    epoch_s = (with_ckpt["seconds"] - writing) / with_ckpt["epochs"]
    per_ckpt = writing / with_ckpt["epochs"]
    lines = [
        "# Checkpoint overhead on Davis",
        "",
        f"- date: {started}; machine: {os.cpu_count()} cores, CPU only; torch threads {args.threads}",
        f"- load average (1/5/15 min) at start: {' / '.join(f'{x:.2f}' for x in load0)}; at end: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- command: `{shlex.join([sys.executable, 'bench/checkpoint_overhead.py', *sys.argv[1:]])}`",
        f"- config: examples/davis.yaml (batch 2048, GIN + protein CNN), {args.epochs} epochs, seed 0; one checkpoint per epoch end",
        "",
        "| measure | value |",
        "|---|---|",
        f"| epoch time (training + validation, checkpoint writing excluded) | {epoch_s:.2f} s |",
        f"| checkpoint write (weights, optimizer, scheduler, best weights, RNG; fsync'd) | {per_ckpt * 1000:.0f} ms, {with_ckpt['checkpoint_mb']} MB |",
        f"| **overhead** (write time / epoch time) | **{100 * per_ckpt / epoch_s:.2f} %** |",
        f"| training time with checkpoints / without (separate runs, noisy) | {with_ckpt['seconds']:.1f} s / {without['seconds']:.1f} s |",
    ]
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
