"""Shared helpers for the benchmark scripts: arguments, environment, timing, mean ± std tables, Markdown output.

Every benchmark trains one ``MultimodalModel`` per (method, seed), evaluates it on the dataset's test split
and reports mean ± std over seeds. The table is printed last on stdout and written to
``docs/results/<dataset>.md`` together with the machine, the command, the seeds and the hyperparameters.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "docs" / "results"
CONFIGS_DIR = REPO / "bench" / "configs"


def load_average() -> str:
    from modalfuse.evaluate.benchmark import load_average as package_load_average

    return package_load_average()


def setup_environment() -> None:
    """Offline, quiet, no matplotlib cache writes in $HOME. Call before importing torch / modalfuse."""
    os.environ.setdefault("MPLCONFIGDIR", str(Path(tempfile.gettempdir()) / "modalfuse-mpl"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)


setup_environment()


def default_data_dir() -> str:
    return os.environ.get("MODALFUSE_DATA_DIR") or str((REPO / ".." / "shared" / "data").resolve())


def parse_args(description: str, dataset: str, default_threads: int = 1, extra: Optional[Callable[[argparse.ArgumentParser], None]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds, run as 0..N-1 (default 5)")
    parser.add_argument("--data-dir", default=default_data_dir(), help="folder holding the dataset folders (default: $MODALFUSE_DATA_DIR or <repo>/../shared/data)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 seed, few epochs; results are printed, not written (unless --out)")
    parser.add_argument("--threads", type=int, default=default_threads, help=f"torch intra-op threads (default {default_threads})")
    parser.add_argument("--out", default=None, help=f"Markdown file to write (default docs/results/{dataset}.md; none in --quick mode)")
    parser.add_argument("--only", default=None, help="comma-separated row labels to run (default: all)")
    if extra:
        extra(parser)
    args = parser.parse_args()
    if args.quick and "--seeds" not in sys.argv:
        args.seeds = 1
    if args.out is None and not args.quick:
        args.out = str(RESULTS_DIR / f"{dataset}.md")
    import torch

    torch.set_num_threads(args.threads)
    return args


def command_line() -> str:
    """The command as typed, relative to the repository root where possible."""
    exe = sys.executable
    try:
        exe = os.path.relpath(exe, REPO) if Path(exe).absolute().is_relative_to(REPO) else exe
    except ValueError:
        pass
    script = sys.argv[0]
    try:
        script = os.path.relpath(Path(script).resolve(), REPO)
    except ValueError:
        pass
    return shlex.join([exe, script, *sys.argv[1:]])


def publish(lines: list[str], out: Optional[str]) -> None:
    """Join a report's lines, write them to ``out`` (when given) and print them last."""
    text = "\n".join(lines) + "\n"
    if out:
        Path(out).write_text(text)
    print(text)


class MachineInfo(dict):
    """The machine's facts by name (cores, cpu, torch, ...); as text, the package's one machine line with the thread
    count and library versions (``modalfuse.evaluate.benchmark.machine_info``), which results headers print."""

    line: str = ""

    def __str__(self) -> str:
        return self.line

    def __format__(self, spec: str) -> str:  # f"{info}" gives the line, not the dict
        return format(self.line, spec)


def machine_info(threads: int) -> MachineInfo:
    import platform

    import torch

    import modalfuse
    from modalfuse.evaluate.benchmark import cpu_model, library_versions, machine_info as package_machine_info

    info = MachineInfo(cores=str(os.cpu_count()), cpu=cpu_model(), torch=torch.__version__, **{"torch threads": str(threads)},
                       python=platform.python_version(), modalfuse=getattr(modalfuse, "__version__", "?"), platform=platform.platform())
    info.line = f"{package_machine_info()}; {threads} intra-op thread(s); {library_versions()}"
    return info


def run_header(threads: int, started: float, load_start: tuple, load_end: tuple) -> list[str]:
    """The date, machine, command and load-average lines every results file starts with."""
    def fmt(load: tuple) -> str:
        return ", ".join(f"{x:.2f}" for x in load)

    return [
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(started))}",
        "- machine: " + ", ".join(f"{k} {v}" for k, v in machine_info(threads).items()),
        f"- command (from the repository root): `{command_line()}`",
        f"- load average (1, 5, 15 min) at start {fmt(load_start)}, at end {fmt(load_end)}",
    ]


def mean_std(values: Sequence[float], percent: bool = False, digits: int = 2) -> str:
    """``mean ± std`` (sample std, n-1; 0 for a single value); ``percent`` multiplies by 100."""
    vals = [v * 100 if percent else v for v in values]
    if not vals:
        return "n/a"
    m = statistics.fmean(vals)
    s = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{m:.{digits}f} ± {s:.{digits}f}"


@dataclass
class Row:
    label: str
    metrics: dict[str, list[float]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)

    def add(self, result: dict[str, float], seconds: float, epochs: Optional[int]) -> None:
        for k, v in result.items():
            self.metrics.setdefault(k, []).append(float(v))
        self.seconds.append(seconds)
        if epochs is not None:
            self.epochs.append(int(epochs))


@dataclass
class Metric:
    key: str
    header: str
    percent: bool = True
    digits: int = 2


class Benchmark:
    """Collects rows (one per method) of per-seed test metrics and wall times, and renders them."""

    def __init__(self, dataset: str, title: str, args: argparse.Namespace, metrics: list[Metric], notes: str = "") -> None:
        self.dataset = dataset
        self.title = title
        self.args = args
        self.metrics = metrics
        self.notes = notes
        self.rows: dict[str, Row] = {}
        self.hyper: dict[str, Any] = {}
        self.start = time.perf_counter()
        self.started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        self.load_start = load_average()
        self.seeds = list(range(args.seeds))
        self.only = set(args.only.split(",")) if args.only else None

    def wanted(self, label: str) -> bool:
        return self.only is None or label in self.only

    def run(self, label: str, seed: int, make_model: Callable[[int], Any], train: Any, test: Any, evaluate: Optional[Callable[[Any, Any], dict]] = None) -> dict:
        """Build with ``make_model(seed)``, fit on ``train``, evaluate on ``test``; record metrics and wall time."""
        model = make_model(seed)
        t0 = time.perf_counter()
        model.fit(train)
        result = evaluate(model, test) if evaluate else model.evaluate(test)
        seconds = time.perf_counter() - t0
        self.rows.setdefault(label, Row(label)).add(
            {k: v for k, v in result.items() if k != "n"}, seconds, model.history.get("epochs")
        )
        shown = "  ".join(f"{m.key}={result[m.key]:.4f}" for m in self.metrics if m.key in result)
        print(f"  [{label}] seed {seed}: {shown}  ({seconds:.1f} s, {model.history.get('epochs')} epochs)", flush=True)
        return result

    # ----------------------------------------------------------------- rendering
    def _cells(self, row: Row) -> list[str]:
        cells = [row.label]
        for m in self.metrics:
            cells.append(mean_std(row.metrics.get(m.key, []), m.percent, m.digits))
        cells.append(f"{statistics.fmean(row.seconds):.1f}" if row.seconds else "n/a")
        cells.append(f"{statistics.fmean(row.epochs):.1f}" if row.epochs else "n/a")
        return cells

    def headers(self) -> list[str]:
        return ["model", *[m.header for m in self.metrics], "wall s / seed", "epochs"]

    def text_table(self) -> str:
        rows = [self.headers(), *[self._cells(r) for r in self.rows.values()]]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = []
        for j, r in enumerate(rows):
            lines.append("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))
            if j == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def markdown_table(self) -> str:
        import pandas as pd

        from modalfuse.evaluate.benchmark import markdown_table

        return markdown_table(pd.DataFrame([self._cells(r) for r in self.rows.values()], columns=self.headers()))

    def markdown(self) -> str:
        total = time.perf_counter() - self.start
        seeds = ", ".join(map(str, self.seeds))
        parts = [
            f"# {self.title}",
            "",
            f"- date: {self.started}",
            f"- machine: {machine_info(self.args.threads)}",
            f"- command (from the repository root): `{command_line()}`",
            f"- seeds: {seeds} (mean ± sample std over seeds; the seed sets the model init, batch order"
            " and the train/validation split where one is used)",
            f"- total wall time: {total / 60:.1f} min",
            "",
            "Metrics are on the test split. `wall s / seed` is the mean wall time of one fit + test evaluation"
            " (feature decoding included); `epochs` is the mean number of epochs run.",
            f"Load average (1 / 5 / 15 min) at start {self.load_start}, at end {load_average()} (on {os.cpu_count()} cores).",
            "",
            self.markdown_table(),
            "",
        ]
        if self.notes:
            parts += [self.notes.strip(), ""]
        parts += ["## Hyperparameters", "", "```json", json.dumps(self.hyper, indent=2, default=str), "```", ""]
        parts += ["## Per-seed results", "", "| model | seed | " + " | ".join(m.header for m in self.metrics) + " | wall s |", "|---|---:|" + "---:|" * (len(self.metrics) + 1)]
        for r in self.rows.values():
            for i, s in enumerate(self.seeds[: len(r.seconds)]):
                vals = []
                for m in self.metrics:
                    v = r.metrics.get(m.key, [])
                    vals.append(f"{v[i] * (100 if m.percent else 1):.{m.digits}f}" if i < len(v) else "n/a")
                parts.append(f"| {r.label} | {s} | " + " | ".join(vals) + f" | {r.seconds[i]:.1f} |")
        parts.append("")
        return "\n".join(parts)

    def finish(self) -> None:
        """Write the Markdown file (unless there is nowhere to write it), then print the table last."""
        total = time.perf_counter() - self.start
        if self.args.out:
            out = Path(self.args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(self.markdown())
            print(f"\nwrote {out}", flush=True)
        print(f"\n{self.title} — test metrics, mean ± std over seeds {self.seeds} ({total / 60:.1f} min in all)")
        print(self.text_table(), flush=True)


def with_encoder(modality, dim: int, options: dict):
    """A copy of ``modality`` with encoder width ``dim`` and encoder ``options``."""
    return modality.model_copy(update={"encoder": modality.encoder.model_copy(update={"dim": dim, "options": dict(options)})}, deep=True)


def recipe_model(config: str, label: str, ds: Any, seed: int = 0, train: Optional[dict] = None, change: Optional[dict] = None):
    """The unfitted model of row ``label`` of ``bench/configs/<config>.yaml`` on dataset ``ds``, with ``seed``;
    ``train`` overrides its training settings. Scripts that reuse a benchmark's recipe read it from its config.

    ``change`` maps sections to overrides whose keys replace the recipe's: ``encoder`` (every modality's), and the
    method's ``fusion``, ``model``, ``train``, ``encoders``, ``options``; e.g. ``{"encoder": {"dim": 128}}``.
    """
    from modalfuse.config import EncoderConfig
    from modalfuse.evaluate.benchmark import MethodConfig, build_model, load_benchmark, method_by_label

    cfg = load_benchmark(CONFIGS_DIR / f"{config}.yaml")
    cfg.data_dir = cfg.data_dir or default_data_dir()
    change = {**(change or {}), "train": {**(change or {}).get("train", {}), **(train or {})}}
    if "encoder" in change:
        cfg = cfg.model_copy(update={"encoder": EncoderConfig.model_validate({**cfg.encoder.model_dump(), **change.pop("encoder")})})
    method = method_by_label(cfg, label).model_dump()
    sections = ("fusion", "model", "train", "encoders", "options")
    for section, values in change.items():
        if section not in sections or not isinstance(values, dict):
            raise ValueError(f"recipe change: {section!r} is not a section to change (encoder, {', '.join(sections)}), or not a mapping")
        method[section] = {**method[section], **values}
    return build_model(cfg, MethodConfig.model_validate(method), ds, seed)
