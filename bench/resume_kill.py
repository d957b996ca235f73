"""Exact resume under SIGKILL: ``modalfuse train`` killed at 5 moments, resumed each time, compared with one uninterrupted run.

One reference run trains the config without interruption. A second run of the same config is killed with SIGKILL
at random moments of three kinds: mid-epoch (a random time into training), between epochs (just after an
epoch-end checkpoint lands) and during a checkpoint write (while a temporary checkpoint folder exists), and is
resumed with ``modalfuse train CONFIG --resume RUN`` after each kill. Its final weights must be bit-identical
(SHA-256 of ``model/weights.safetensors``) and its test metrics and per-epoch losses equal to the reference's.
The thread count is pinned (``train.threads``): floating-point sums depend on it.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
KINDS = ("mid-epoch", "checkpoint write", "between epochs", "mid-epoch", "checkpoint write")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def command(config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "modalfuse.cli", "train", str(config), *extra]


def environment(root: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MODALFUSE_PROGRESS": "",
            "MODALFUSE_CACHE": str(root / "cache"), "MPLCONFIGDIR": str(root / "mpl"), "HF_HUB_OFFLINE": "1"}


def run_folder(parent: Path) -> Path | None:
    found = sorted(p for p in parent.glob("*") if p.is_dir())
    return found[0] if found else None


def checkpoint_entries(run: Path | None) -> list[str]:
    folder = run / "checkpoints" if run else None
    try:
        return [e.name for e in os.scandir(folder)] if folder else []
    except OSError:
        return []


def wait_and_kill(proc: subprocess.Popen, kind: str, rng: random.Random, parent: Path, train_s: float, timeout: float) -> dict:
    """Kill ``proc`` with SIGKILL at a moment of ``kind``; returns what was seen."""
    start, deadline = time.perf_counter(), time.perf_counter() + timeout
    seen = set(checkpoint_entries(run_folder(parent)))
    before = set(seen)
    ends_to_skip = rng.randint(0, 2)
    writes_to_skip = rng.randint(0, 3)
    delay = rng.uniform(0.0, 0.5) * train_s
    training_started = None
    while proc.poll() is None and time.perf_counter() < deadline:
        run = run_folder(parent)
        entries = checkpoint_entries(run)
        if training_started is None and any(not e.startswith(".") and e not in seen for e in entries):
            training_started = time.perf_counter()  # this process writes checkpoints: it is training
        hit = False
        if kind == "mid-epoch":
            hit = training_started is not None and time.perf_counter() - training_started >= delay
        elif kind == "checkpoint write":
            tmp = [e for e in entries if e.endswith(".tmp") and e not in seen]
            if tmp:
                seen.update(tmp)
                writes_to_skip -= 1
                hit = writes_to_skip < 0
        else:  # between epochs: just after a new epoch-end checkpoint (an epoch folder whose step ends an epoch)
            new = [e for e in entries if not e.startswith(".") and e not in seen]
            if new:
                seen.update(new)
                ends_to_skip -= 1
                hit = ends_to_skip < 0 and any(_is_epoch_end(run / "checkpoints" / e) for e in new)
        if hit:
            proc.kill()
            proc.wait()
            left = [e for e in checkpoint_entries(run) if e.endswith(".tmp") and e not in before]
            return {"kind": kind, "at_s": round(time.perf_counter() - start, 2), "torn_write_left": bool(left), "finished": False,
                    "resume_from": newest(run)}
        time.sleep(0.0005 if kind == "checkpoint write" else 0.01)
    proc.wait()
    return {"kind": kind, "at_s": round(time.perf_counter() - start, 2), "torn_write_left": False, "finished": proc.returncode == 0}


def newest(run: Path) -> str:
    """The checkpoint a resume will start from (the newest complete one), as modalfuse chooses it."""
    from modalfuse.train.checkpoint import latest_checkpoint

    found = latest_checkpoint(run)
    return found.name if found else "none (starts over)"


def _is_epoch_end(folder: Path) -> bool:
    try:
        state = json.loads((folder / "state.json").read_text())
    except (OSError, ValueError):
        return False
    return any(isinstance(v, dict) and isinstance(v.get("sampler"), dict) and v["sampler"].get("skip") == 0 for v in state.get("callbacks", {}).values())


def summary(run: Path) -> dict:
    data = json.loads((run / "summary.json").read_text())
    metrics = (run / "metrics.csv").read_text().splitlines()
    header = metrics[0].split(",")
    keep = [i for i, h in enumerate(header) if h != "seconds"]
    losses = [",".join(line.split(",")[i] for i in keep) for line in metrics]
    return {"weights": sha256(run / "model" / "weights.safetensors"), "test": data.get("test"), "epochs": losses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "examples" / "handwritten.yaml"))
    parser.add_argument("--data-dir", default=str((REPO / ".." / "shared" / "data").resolve()))
    parser.add_argument("--max-epochs", type=int, default=12)
    parser.add_argument("--every-steps", type=int, default=10, help="train.checkpoint_every_steps of the runs")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="a validation split, so that best weights and early stopping are resumed too")
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--work", default="/tmp/modalfuse-resume-kill")
    parser.add_argument("--out", default=str(REPO / "docs" / "results" / "resume_kill.md"))
    args = parser.parse_args()
    root = Path(args.work)
    subprocess.run(["rm", "-rf", str(root)], check=True)
    root.mkdir(parents=True)
    cfg = yaml.safe_load(Path(args.config).read_text())
    cfg.setdefault("train", {}).update(max_epochs=args.max_epochs, checkpoint_every_steps=args.every_steps, progress=False,
                                       val_fraction=args.val_fraction, patience=args.patience)
    cfg["train"].setdefault("threads", 1)
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    env, data = environment(root), ["--data-dir", args.data_dir]
    load0, started = os.getloadavg(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())

    t0 = time.perf_counter()
    subprocess.run(command(config, "--run-dir", str(root / "ref"), *data), env=env, check=True, capture_output=True, text=True)
    reference_s = time.perf_counter() - t0
    reference = run_folder(root / "ref")
    train_s = json.loads((reference / "summary.json").read_text())["training"]["seconds"]

    rng = random.Random(args.seed)
    kills, resumes, exit_codes = [], 0, []
    parent = root / "killed"
    proc = subprocess.Popen(command(config, "--run-dir", str(parent), *data), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for kind in KINDS:
        kills.append(wait_and_kill(proc, kind, rng, parent, train_s, timeout=20 * reference_s))
        if kills[-1]["finished"]:
            break
        run = run_folder(parent)
        proc = subprocess.Popen(command(config, "--resume", str(run), *data), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        resumes += 1
    _, err = proc.communicate(timeout=20 * reference_s)
    exit_codes.append(proc.returncode)
    killed = run_folder(parent)
    ref, got = summary(reference), summary(killed)
    same_weights, same_test, same_epochs = ref["weights"] == got["weights"], ref["test"] == got["test"], ref["epochs"] == got["epochs"]

    lines = [
        "# Exact resume after SIGKILL",
        "",
        f"- date: {started}; machine: {os.cpu_count()} cores, CPU only",
        f"- load average (1/5/15 min) at start: {' / '.join(f'{x:.2f}' for x in load0)}; at end: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- command: `{shlex.join([sys.executable, 'bench/resume_kill.py', *sys.argv[1:]])}`",
        f"- config: {Path(args.config).name} with max_epochs {args.max_epochs}, checkpoint_every_steps {args.every_steps}, "
        f"val_fraction {args.val_fraction}, patience {args.patience}, threads {cfg['train']['threads']}; kill-moment seed {args.seed}",
        f"- reference run (uninterrupted): {reference_s:.1f} s in all, {train_s:.1f} s training",
        "",
        "Seconds count from the (re)start of the process, data preparation included; a torn checkpoint is a temporary",
        "folder the killed writer left (never loaded; removed on resume).",
        "",
        "| kill | kind | seconds after start | torn checkpoint left behind | resumed from |",
        "|---:|---|---:|---|---|",
        *[f"| {i + 1} | {k['kind']} | {k['at_s']} | {'yes' if k['torn_write_left'] else 'no'} | {k['resume_from']} |"
          for i, k in enumerate(kills) if not k["finished"]],
        "",
        f"- kills: {sum(not k['finished'] for k in kills)}, resumes: {resumes}, last exit code: {exit_codes[-1]}",
        f"- final weights SHA-256: reference {ref['weights'][:16]}…, killed+resumed {got['weights'][:16]}… → "
        f"**{'bit-identical' if same_weights else 'DIFFERENT'}**",
        f"- test metrics equal: **{same_test}** ({json.dumps(ref['test'])})",
        f"- per-epoch losses and validation metrics (metrics.csv without the seconds column) equal: **{same_epochs}**",
    ]
    if proc.returncode != 0:
        lines.append(f"- last resume failed: {err.decode()[-500:]}")
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)
    sys.exit(0 if same_weights and same_test and same_epochs else 1)


if __name__ == "__main__":
    main()
