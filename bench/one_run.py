"""Wall time of one method x one seed on the handwritten data, as a user runs it: the CLI, import included.

Each run is a fresh process, `modalfuse train examples/handwritten.yaml` (concat fusion, 20 epochs, train then
test, the model and run folder saved), timed from process start to exit. Issue target: <= 10 s on 2 cores
(measured there: Ludwig 55 s, TMC's code 195 s). Writes docs/results/one_run.md and prints the table last.

    python bench/one_run.py [--runs 3] [--data-dir ../shared/data]
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 10.0


def one_run(data_dir: str, run_dir: str) -> tuple[float, str]:
    """(wall seconds, the test line) of one `modalfuse train` process."""
    cmd = [sys.executable, "-m", "modalfuse.cli", "train", str(ROOT / "examples" / "handwritten.yaml"), "--data-dir", data_dir, "--run-dir", run_dir]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"modalfuse train failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    test = next((line for line in proc.stdout.splitlines() if line.startswith("test:")), "")
    return wall, test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--output", default=str(ROOT / "docs" / "results" / "one_run.md"))
    args = parser.parse_args()
    from modalfuse.evaluate.benchmark import machine_info

    load = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    rows = []
    with tempfile.TemporaryDirectory(prefix="one-run-") as tmp:
        for i in range(args.runs):
            wall, test = one_run(args.data_dir, str(Path(tmp) / f"run{i}"))
            accuracy = re.search(r"accuracy=([\d.]+)", test)
            rows.append((i + 1, wall, accuracy.group(1) if accuracy else "?"))
            print(f"run {i + 1}: {wall:.2f} s, test accuracy {rows[-1][2]}", flush=True)
    walls = [w for _, w, _ in rows]
    table = "\n".join(["| run | wall s | test accuracy |", "|---|---|---|"] + [f"| {i} | {w:.2f} | {a} |" for i, w, a in rows])
    verdict = "met" if statistics.median(walls) <= TARGET_S else "NOT met"
    text = "\n".join([
        "# One method x one seed, import included (handwritten, concat)", "",
        f"- date: {started}", f"- machine: {machine_info()}; load average before: {load[0]:.2f} (1 min)",
        f"- command: `python bench/one_run.py --runs {args.runs}`; each run is a fresh process of "
        "`python -m modalfuse.cli train examples/handwritten.yaml --data-dir DATA --run-dir TMP` (seed 0, 20 epochs, 1 thread), "
        "timed from start to exit", "",
        table, "",
        f"Median {statistics.median(walls):.2f} s, max {max(walls):.2f} s; target ≤ {TARGET_S:.0f} s: {verdict}.", "",
    ])
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
