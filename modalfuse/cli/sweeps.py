"""``modalfuse tune CONFIG``: a sweep over the config's ``search:`` section on Ray Tune (modalfuse.tune)."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_tune_parser(sub) -> None:
    t = sub.add_parser("tune", help="sweep the config's search: section on Ray Tune (needs the tune extra)")
    t.add_argument("config")
    t.add_argument("--output", "-o", help="sweep folder (default tune/CONFIG_STEM); running again resumes an interrupted sweep")
    t.add_argument("--data-dir", help="folder holding local copies of built-in datasets")
    t.add_argument("--address", help="a Ray cluster to run on (default: a local Ray on this machine)")
    t.set_defaults(func=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    from ..tune.sweep import run_sweep

    output = Path(args.output or Path("tune") / Path(args.config).stem)
    summary = run_sweep(args.config, output, data_dir=args.data_dir, address=args.address)
    best = summary["best"]
    print(f"{summary['finished']}/{summary['trials']} trials finished in {summary['wall_s']} s"
          f"{' (resumed)' if summary['resumed'] else ''}; best {best['trial']}: "
          + ", ".join(f"{k}={v}" for k, v in best["params"].items()))
    print(f"wrote {output / 'results.md'}, {output / 'results.csv'}, {output / 'tune.png'} and {output / 'best.yaml'}")
    if summary["interrupted"]:
        print(f"interrupted: {summary['interrupted']} trial(s) unfinished; run the same command again to resume the sweep")
        return 130
    return 0
