"""Sweep overhead: `modalfuse tune` with 8 trials and ASHA on handwritten against the 2 slowest trials run alone.

Runs the sweep of bench/sweeps/handwritten.yaml (local Ray, 1 CPU per trial, as many at once as there are
cores), then trains the 2 slowest trials' configs one after the other with `modalfuse train` (fresh processes, the same
validation split as in the sweep) and compares wall times, start-up included on both sides. Target: sweep ≤ 3 × (sum
of the 2 alone). The load average (1 min) is recorded before and after each part.

    .venv/bin/python bench/sweep_handwritten.py     # writes docs/results/sweep_handwritten.md, figures printed last
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, RESULTS_DIR, command_line, default_data_dir, machine_info, publish  # noqa: E402

CONFIG = REPO / "bench" / "sweeps" / "handwritten.yaml"


def timed(cmd: list[str], cwd: Path) -> tuple[float, str, tuple[float, float]]:
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return wall, done.stdout, (load, os.getloadavg()[0])


def markdown(frame) -> str:
    cells = [[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row] for row in frame.itertuples(index=False)]
    return "\n".join(["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
                     + ["| " + " | ".join(r) + " |" for r in cells])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=default_data_dir())
    p.add_argument("--out", default=str(RESULTS_DIR / "sweep_handwritten.md"))
    args = p.parse_args()
    import pandas as pd
    import yaml

    from modalfuse.tune import apply_params
    from modalfuse.tune.sweep import read_sweep

    raw, search = read_sweep(CONFIG)
    modalfuse = [sys.executable, "-m", "modalfuse.cli"]
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        tmp = Path(tmp)
        sweep_s, out, sweep_load = timed([*modalfuse, "tune", str(CONFIG), "-o", str(tmp / "sweep"), "--data-dir", args.data_dir], tmp)
        table = pd.read_csv(tmp / "sweep" / "results.csv")
        summary = json.loads((tmp / "sweep" / "summary.json").read_text())
        slowest = table.sort_values("seconds", ascending=False).head(2)
        alone = []
        for _, row in slowest.iterrows():
            params = {k: (row[k].item() if hasattr(row[k], "item") else row[k]) for k in search.space}
            cfg, _ = apply_params({k: v for k, v in raw.items() if k != "search"}, params)
            cfg["train"]["val_fraction"] = search.val_fraction  # as in the sweep
            path = tmp / f"{row['trial']}.yaml"
            path.write_text(yaml.safe_dump(cfg))
            wall, _, load = timed([*modalfuse, "train", str(path), "--data-dir", args.data_dir, "--run-dir", str(tmp / "runs")], tmp)
            alone.append({"trial": row["trial"], "params": params, "wall_s": wall, "sweep_trial_s": float(row["seconds"]),
                          "epochs": int(row["epochs"]), "load": load})
    ratio = sweep_s / sum(a["wall_s"] for a in alone)
    lines = ["# Sweep overhead: 8 trials with ASHA on handwritten", "",
             f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Command: `{command_line()}`.",
             "Machine: " + ", ".join(f"{k} {v}" for k, v in machine_info(1).items()) + ".",
             f"Sweep: `modalfuse tune {CONFIG.relative_to(REPO)}` (random search seed {search.seed}, ASHA grace "
             f"{search.scheduler.grace_period} epochs, reduction factor {search.scheduler.reduction_factor:g}, 1 CPU per trial, "
             f"local Ray started by the command). Alone: `modalfuse train` of each of the 2 trials with the longest "
             "training time, run one after the other. Wall times include process start-up (and Ray's, for the sweep).",
             "Load averages (1 min) before → after each run are listed.", "",
             "## Trials", "", markdown(table.sort_values(f"best {search.metric}", ascending=search.mode == "min")), "",
             "## Timing", "", "| run | wall s | load before → after |", "|---|---|---|",
             f"| sweep, {summary['trials']} trials ({summary['finished']} finished) | {sweep_s:.1f} | {sweep_load[0]:.2f} → {sweep_load[1]:.2f} |"]
    for a in alone:
        lines.append(f"| alone: {a['trial']} ({a['epochs']} epochs in the sweep, {a['sweep_trial_s']:.1f} s of training there) | "
                     f"{a['wall_s']:.1f} | {a['load'][0]:.2f} → {a['load'][1]:.2f} |")
    lines += ["", f"**Sweep wall time / (2 slowest trials alone): {ratio:.2f}** (target ≤ 3)."]
    publish(lines, args.out)


if __name__ == "__main__":
    main()
