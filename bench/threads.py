"""`modalfuse demo` quiet and beside one competing CPU-bound process, in one run: how gracefully training shares a machine.

Each configuration runs the whole demo (``modalfuse demo``, 4 trainings) in a fresh process, first on its own, then
with one busy-looping Python process started just before it. The ratio competing / quiet is the figure of merit
(a fair share of a 2-core machine with one competitor is 2×, issue 16 asks for at most 2.2×).

``current`` is the command as it ships: thread count chosen from the free cores (``modalfuse/train/threads.py``)
and ``OMP_WAIT_POLICY=PASSIVE``. ``baseline`` (skipped with ``--current-only``) is the previous behaviour (torch's default thread count,
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


GRID_FIT = """
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
from modalfuse.api import MultimodalModel
from modalfuse.config import TrainConfig
from modalfuse.datasets import make_demo_data
data = make_demo_data(sys.argv[2], seed=0)
small = {"image": {"widths": [16, 32, 64]}, "audio": {"widths": [16, 32, 64], "n_mels": 32, "hop_ms": 20.0}}
mods = [m.model_copy(update={"encoder": m.encoder.model_copy(update={"dim": 64, "options": small[m.name]})}) for m in data.modalities]
cfg = TrainConfig(max_epochs=3, batch_size=64, lr=3e-3, seed=0, progress=False, threads=int(sys.argv[1]), checkpoint=False)
start = time.perf_counter()
MultimodalModel(mods, data.target, None, cfg).fit(data.train)
print(time.perf_counter() - start)
"""


def grid(work: Path) -> list[str]:
    """The demo's fused model, 3 epochs, for each (competitor, OpenMP wait policy, threads): which setting matters."""
    lines = ["", "Which setting matters (`--grid`): the demo's fused model, 3 epochs, one fit per cell, seconds:", "",
             "| competitor | OMP_WAIT_POLICY | 1 thread | 2 threads | load at end |", "|---|---|---:|---:|---|"]
    for competing in (False, True):
        for policy in ("(default)", "PASSIVE"):
            cells = []
            for n in (1, 2):
                env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
                env.update(PYTHONPATH=str(REPO), **({"OMP_WAIT_POLICY": policy} if policy == "PASSIVE" else {}))
                rival = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if competing else None
                try:
                    out = subprocess.run([sys.executable, "-c", GRID_FIT, str(n), str(work / "grid")], env=env, check=True,
                                         capture_output=True, text=True).stdout
                finally:
                    if rival:
                        rival.kill()
                        rival.wait()
                cells.append(f"{float(out.split()[-1]):.1f}")
            lines.append(f"| {'one' if competing else 'none'} | {policy} | {cells[0]} | {cells[1]} | {os.getloadavg()[0]:.2f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--current-only", action="store_true", help="skip the previous thread defaults (slow on a loaded machine)")
    parser.add_argument("--epochs", type=int, default=12, help="demo epochs (default 12, the demo's own)")
    parser.add_argument("--grid", action="store_true", help="also time one short fit per (competitor, wait policy, threads)")
    parser.add_argument("--out", default=str(REPO / "docs" / "results" / "threads.md"))
    args = parser.parse_args()
    started, load0 = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="modalfuse-threads-") as tmp:
        for variant in ([] if args.current_only else ["baseline"]) + ["current"]:
            quiet, quiet_load = demo(variant, False, Path(tmp), args.epochs)
            busy, busy_load = demo(variant, True, Path(tmp), args.epochs)
            rows.append((variant, quiet, busy, quiet_load, busy_load))
            print(f"{variant}: quiet {quiet:.1f} s, competing {busy:.1f} s, ratio {busy / quiet:.2f}", file=sys.stderr, flush=True)
        extra = grid(Path(tmp)) if args.grid else []
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
        *extra,
    ]
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
