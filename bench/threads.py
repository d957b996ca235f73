"""`modalfuse demo` quiet and beside one competing CPU-bound process, in one run: how gracefully training shares a machine.

Each configuration runs the whole demo (``modalfuse demo``, 4 trainings) in a fresh process, first on its own, then
with one busy-looping Python process started just before it. The ratio competing / quiet is the figure of merit
(a fair share of a 2-core machine with one competitor is 2×, issue 16 asks for at most 2.2×).

``current`` is the command as it ships: thread count chosen from the free cores (``modalfuse/train/threads.py``)
and ``OMP_WAIT_POLICY=PASSIVE``. ``--baseline`` also runs the previous behaviour (torch's default thread count,
OpenMP's default waiting), imported before the command line so that nothing of the new defaults applies.
Self-contained; the figures are printed last and written to docs/results/threads.md.
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE = ("import sys, torch; import modalfuse.train.threads as t; "
            "t.default_threads = lambda current, sample_s=0.1: current; "
            "from modalfuse.cli import main; sys.exit(main(sys.argv[1:]))")


def demo(variant: str, competing: bool, work: Path, epochs: int) -> tuple[float, str]:
    """Seconds of one whole ``modalfuse demo`` run, and the load average (1 min) at its end."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS")}
    env.update(PYTHONPATH=str(REPO), MPLCONFIGDIR=str(work / "mpl"), MODALFUSE_CACHE=str(work / "cache"), HF_HUB_OFFLINE="1")
    args = ["demo", "--run-dir", str(work / "runs"), "--epochs", str(epochs)]
    cmd = [sys.executable, "-m", "modalfuse.cli", *args] if variant == "current" else [sys.executable, "-c", BASELINE, *args]
    rival = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if competing else None
    try:
        if rival:
            time.sleep(1.0)  # the competitor is running before training starts, as on a shared machine
        start = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return time.perf_counter() - start, f"{os.getloadavg()[0]:.2f}"
    finally:
        if rival:
            rival.kill()
            rival.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", action="store_true", help="also run the previous thread defaults")
    parser.add_argument("--epochs", type=int, default=12, help="demo epochs (default 12, the demo's own)")
    parser.add_argument("--out", default=str(REPO / "docs" / "results" / "threads.md"))
    args = parser.parse_args()
    started, load0 = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="modalfuse-threads-") as tmp:
        for variant in (["baseline"] if args.baseline else []) + ["current"]:
            quiet, quiet_load = demo(variant, False, Path(tmp), args.epochs)
            busy, busy_load = demo(variant, True, Path(tmp), args.epochs)
            rows.append((variant, quiet, busy, quiet_load, busy_load))
            print(f"{variant}: quiet {quiet:.1f} s, competing {busy:.1f} s, ratio {busy / quiet:.2f}", file=sys.stderr, flush=True)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    lines = [
        "# Training beside a competing CPU-bound process (`modalfuse demo`)",
        "",
        f"- date: {started}; machine: {cores} usable cores ({platform.processor() or platform.machine()}), CPU only",
        f"- command: `{shlex.join([sys.executable, 'bench/threads.py', *sys.argv[1:]])}`; demo epochs {args.epochs}, seed 0",
        f"- load average (1/5/15 min) at start: {' / '.join(f'{x:.2f}' for x in load0)}; at end: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}",
        "  (other processes besides the one competitor raise both times; the ratio is what this measures)",
        "",
        "| defaults | quiet (s) | one competitor (s) | ratio | load at end quiet / competing |",
        "|---|---:|---:|---:|---|",
        *[f"| {v} | {q:.1f} | {b:.1f} | {b / q:.2f}× | {ql} / {bl} |" for v, q, b, ql, bl in rows],
        "",
        "current: threads = free cores (affinity minus other processes' CPU use over 0.1 s, at least 1), OMP_WAIT_POLICY=PASSIVE;",
        "baseline: torch's default threads (one per core) and OpenMP's default waiting. Target: ratio ≤ 2.2×.",
    ]
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
