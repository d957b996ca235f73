"""Benchmark: bounded memory. A synthetic image + audio + tabular classification set whose decoded float32 size is
≥ 12 GB (4× a 3 GB budget) is generated as PNG/WAV files and a CSV, then trained for one epoch with
``data.storage: auto`` and ``memory_budget_gb: 3`` (which picks the disk path): the table is read in chunks, images
and audio are decoded once by worker processes into uint8 / int16 shards, and DataLoader workers gather batches.
Peak RSS is sampled every 0.25 s over the whole process tree (decode pool and loader workers included; RSS counts
pages shared by several processes once per process, so the sum overstates the real footprint).

    .venv/bin/python bench/out_of_core.py                  # ≈61k rows, writes docs/results/out_of_core.md
    .venv/bin/python bench/out_of_core.py --rows 3000 --out /tmp/ooc.md   # a small trial

The files are generated under --folder (default /tmp/modalfuse-out-of-core) and removed at the end (--keep keeps them).
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_DIR, publish, run_header  # noqa: E402  (sets the environment first)

import numpy as np  # noqa: E402

CLASSES = 10


def _image(rng: np.random.Generator, label: int, size: int) -> np.ndarray:
    """A coloured square placed (and coloured) by the label, jittered, on noise."""
    img = rng.integers(0, 90, (size, size, 3), dtype=np.uint8)
    side = size // 5
    gx, gy = label % 5, label // 5
    x0 = int(np.clip(gx * size / 5 + rng.integers(-side // 3, side // 3 + 1), 0, size - side))
    y0 = int(np.clip(gy * size / 2 + size / 4 - side / 2 + rng.integers(-side // 2, side // 2 + 1), 0, size - side))
    img[y0:y0 + side, x0:x0 + side, label % 3] = rng.integers(150, 256)
    return img


_BANK: dict = {}


def _waves(seed: int, rate: int, seconds: float, per_class: int = 48) -> list[list[np.ndarray]]:
    """Per class, ``per_class`` noisy tones pitched by the label (int16); each row takes one at a random gain.
    Synthesising a fresh 3 s clip per row took too long on the loaded machine; every row still gets its own file."""
    if (seed, rate, seconds) not in _BANK:
        rng = np.random.default_rng([seed, 99])
        t = np.arange(int(rate * seconds)) / rate
        bank = []
        for label in range(CLASSES):
            waves = []
            for _ in range(per_class):
                w = rng.uniform(0.15, 0.4) * np.sin(2 * np.pi * (250 + 120 * label) * t + rng.uniform(0, 6.3)) + rng.normal(0, 0.15, t.size)
                waves.append(np.round(np.clip(w, -1, 1) * 32767).astype(np.int16))
            bank.append(waves)
        _BANK[(seed, rate, seconds)] = bank
    return _BANK[(seed, rate, seconds)]


def _wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """A mono 16-bit PCM WAV file."""
    import struct

    data = samples.astype("<i2").tobytes()
    return b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, 2 * rate, 2, 16) \
        + b"data" + struct.pack("<I", len(data)) + data


def _block(job):
    """Write the files of rows [start, start + n) into ``folder/NNNN/``; return their CSV lines."""
    folder, start, n, size, rate, seconds, seed = job
    from PIL import Image

    bank = _waves(seed, rate, seconds)
    rng = np.random.default_rng([seed, start])
    sub = Path(folder) / f"{start // 1000:04d}"
    sub.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(start, start + n):
        label = int(rng.integers(CLASSES))
        image, audio = f"{sub.name}/{i}.png", f"{sub.name}/{i}.wav"
        x1, x2, cat = label / 3 + rng.normal(0, 1.5), float(rng.normal()), f"k{(label + rng.integers(0, 4)) % CLASSES}"
        r = rng.random()
        if r < 0.005:
            image = ""  # missing image: the row is kept, its mask says so
        elif r < 0.01:
            audio = ""
        if image:
            Image.fromarray(_image(rng, label, size)).save(Path(folder) / image, compress_level=1)
            if 0.01 <= r < 0.0105:  # a damaged image file: the row is skipped and reported
                (Path(folder) / image).write_bytes(b"\x89PNG broken")
        if audio:
            wave = bank[label][int(rng.integers(len(bank[label])))]
            (Path(folder) / audio).write_bytes(_wav_bytes((wave * rng.uniform(0.5, 1.0)).astype(np.int16), rate))
        lines.append(f"{image},{audio},{x1:.5f},{x2:.5f},{cat},{label}\n")
    return lines


def generate(folder: Path, name: str, rows: int, size: int, rate: int, seconds: float, seed: int, workers: int) -> Path:
    jobs = [(str(folder), s, min(1000, rows - s), size, rate, seconds, seed) for s in range(0, rows, 1000)]
    folder.mkdir(parents=True, exist_ok=True)
    table = folder / f"{name}.csv"
    with open(table, "w") as fh, multiprocessing.get_context("fork").Pool(workers) as pool:
        fh.write("image,audio,x1,x2,site,label\n")
        for lines in pool.imap(_block, jobs):
            fh.writelines(lines)
    return table


class PeakRSS:
    """Sums the resident memory of this process and all its descendants every ``interval`` seconds; keeps the peak."""

    def __init__(self, interval: float = 0.25) -> None:
        import psutil

        self.psutil, self.interval = psutil, interval
        self.peak, self.peak_procs, self.samples, self.peak_pss = 0, 0, 0, 0
        self.phase, self.phases, self.peak_parts = "decode", {}, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = self.psutil.Process()
        while not self._stop.is_set():
            total, procs, pss, parts = 0, 0, 0, []
            for p in [me, *me.children(recursive=True)]:
                try:
                    rss = p.memory_info().rss
                    total += rss
                    procs += 1
                    parts.append(("main" if p.pid == me.pid else p.name()[:12], rss))
                    if self.samples % 8 == 0:  # proportional set size (shared pages split between processes): costly, sampled less often
                        pss += p.memory_full_info().pss
                except self.psutil.Error:
                    pass
            if total > self.peak:
                self.peak, self.peak_procs, self.peak_parts = total, procs, sorted(parts, key=lambda x: -x[1])
            if total > self.phases.get(self.phase, (0, 0))[0]:
                self.phases[self.phase] = (total, procs)
            self.peak_pss = max(self.peak_pss, pss)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) if Path(path).exists() else 0


def gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="training rows (default: enough for --decoded-gb)")
    parser.add_argument("--decoded-gb", type=float, default=12.5, help="decoded float32 size to reach (default 12.5)")
    parser.add_argument("--test-rows", type=int, default=2000)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--budget-gb", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the training process (1: on a loaded 2-core machine more threads spin idle)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--chunk-size", type=int, default=10000)
    parser.add_argument("--folder", default="/tmp/modalfuse-out-of-core")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="use the files of an earlier --keep run in --folder (shards are rebuilt)")
    parser.add_argument("--out", default=str(RESULTS_DIR / "out_of_core.md"))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from modalfuse import MultimodalModel
    from modalfuse.data.storage import decoded_bytes

    folder = Path(args.folder)
    reuse = args.reuse and (folder / "data" / "train.csv").is_file() and (folder / "test" / "test.csv").is_file()
    if reuse:  # the files of an earlier run; the decoded shards are always made afresh
        shutil.rmtree(folder / "cache", ignore_errors=True)
    else:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    df_before = subprocess.run(["df", "-h", str(folder)], capture_output=True, text=True).stdout.strip()
    load_start, started = os.getloadavg(), time.time()
    modalities = [
        {"name": "image", "kind": "image", "columns": ["image"], "options": {"size": [args.image_size] * 2, "channels": 3},
         "encoder": {"dim": 64, "options": {"widths": [8, 16, 32], "dropout": 0.1}}},
        {"name": "audio", "kind": "audio", "columns": ["audio"], "options": {"sample_rate": args.sample_rate, "max_seconds": args.seconds},
         "encoder": {"dim": 64, "options": {"widths": [8, 16, 32], "n_mels": 32, "hop_ms": 32.0, "dropout": 0.1}}},
        {"name": "record", "kind": "tabular", "options": {"numeric": ["x1", "x2"], "categorical": ["site"]}},
    ]
    model = MultimodalModel(
        modalities, "label", model={"fusion": {"name": "concat", "dim": 128}},
        train={"max_epochs": 1, "batch_size": args.batch_size, "lr": 3e-3, "val_fraction": 0.02, "progress": False, "seed": 0,
               "workers": args.workers},
        on_error="skip", cache_dir=str(folder / "cache" / "features"), storage="auto", memory_budget_gb=args.budget_gb,
        workers=args.workers, chunk_size=args.chunk_size,
    )
    per_row = decoded_bytes(model.preprocessors, 1)
    rows = args.rows or int(np.ceil(args.decoded_gb * 1e9 / per_row))

    t0 = time.perf_counter()
    if reuse:
        train_csv, test_csv = folder / "data" / "train.csv", folder / "test" / "test.csv"
        rows = train_csv.read_text().count("\n") - 1
        t_generate = float("nan")  # generated by an earlier run
    else:
        train_csv = generate(folder / "data", "train", rows, args.image_size, args.sample_rate, args.seconds, 0, args.workers)
        test_csv = generate(folder / "test", "test", args.test_rows, args.image_size, args.sample_rate, args.seconds, 1, args.workers)
        t_generate = time.perf_counter() - t0
    source_bytes = du(folder / "data")

    import modalfuse.api as api

    phases, real_fit_net = {}, api.fit_net

    def timed_fit_net(*a, **k):  # decoding ends where training starts
        phases["train_start"] = time.perf_counter()
        rss.phase = "train"
        phases["shards"] = du(folder / "cache" / "shards")
        out = real_fit_net(*a, **k)
        phases["train_end"] = time.perf_counter()
        rss.phase = "evaluate"
        return out

    api.fit_net = timed_fit_net
    with PeakRSS() as rss:
        t1 = time.perf_counter()
        model.fit(str(train_csv))
        metrics = model.evaluate(str(test_csv))
    api.fit_net = real_fit_net
    t_decode = phases["train_start"] - t1
    t_train = phases["train_end"] - phases["train_start"]
    train_r, val_r = model.reports["train"], model.reports["val"]
    read = train_r.rows_read + val_r.rows_read
    used = train_r.rows_used + val_r.rows_used
    skipped = len(train_r.skipped) + len(val_r.skipped)
    trained = train_r.rows_used
    load_end = os.getloadavg()
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)

    decoded = rows * per_row
    ok_rss = rss.peak <= args.budget_gb * 1e9
    lines = [
        "# Out-of-core training: bounded memory",
        "",
        *run_header(args.threads, started, load_start, load_end),
        f"- seed 0; {args.workers} decode workers and {args.workers} DataLoader workers; torch threads {args.threads}; chunks of {args.chunk_size} rows",
        f"- disk before: `{df_before.splitlines()[-1] if df_before else '?'}`",
        "",
        f"Synthetic 10-class set: {rows:,} training rows (+ {args.test_rows:,} test rows), each a {args.image_size}×{args.image_size} RGB PNG "
        f"(a coloured square whose place and colour follow the label, on noise), a {args.seconds:g} s {args.sample_rate} Hz 16-bit WAV "
        "(a tone pitched by the label, in noise: one of 48 clips per class at a random gain, another 48 for the test rows) and three table columns (a noisy number, a noise column, a weakly related category). "
        "0.5 % of the rows lack the image, 0.5 % the audio; 0.05 % have a damaged image file (skipped and reported). "
        f"Decoded float32 size (what the in-memory path holds): {per_row:,} bytes a row, {gb(decoded)} in all, "
        f"{decoded / (args.budget_gb * 1e9):.1f}× the {args.budget_gb:g} GB budget. `data.storage: auto` with `memory_budget_gb: {args.budget_gb:g}` chose "
        f"**{model.storage_}**. Model: image CNN 8/16/32, audio log-mel CNN 8/16/32, tabular MLP, concat fusion, batch {args.batch_size}, one epoch; 2 % of the rows held out for validation.",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| peak RSS, process tree (sum over {rss.peak_procs} processes at the peak) | **{gb(rss.peak)}** ({'≤' if ok_rss else '>'} {args.budget_gb:g} GB budget) |",
        "| peak RSS by phase | " + ", ".join(f"{k} {gb(v[0])} ({v[1]} processes)" for k, v in rss.phases.items()) + " |",
        "| processes at the peak (RSS) | " + ", ".join(f"{n} {gb(r)}" for n, r in rss.peak_parts) + " |",
        f"| peak PSS, process tree (shared pages split between processes; sampled every 2 s) | {gb(rss.peak_pss)} |",
        f"| rows read = used + skipped | {read:,} = {used:,} + {skipped:,} ({'holds' if read == used + skipped else 'FAILS'}) |",
        f"| rows trained on (one epoch) | {trained:,} |",
        f"| time to generate the files | {'not measured: files of an earlier run (--reuse)' if reuse else f'{t_generate:.0f} s'} |",
        f"| time to read, decode and shard (first time, {args.workers} workers) | {t_decode:.0f} s ({rows / max(t_decode, 1e-9):.0f} rows/s) |",
        f"| time to train one epoch (+ validation) | {t_train:.0f} s ({trained / max(t_train, 1e-9):.0f} samples/s) |",
        f"| source files (PNG + WAV) on disk | {gb(source_bytes)} |",
        f"| shards on disk (uint8 pixels, int16 samples) | {gb(phases.get('shards', 0))} |",
        f"| test accuracy after one epoch ({metrics['n']:,} rows, chance 10 %) | {100 * metrics['accuracy']:.2f} % |",
        f"| test macro F1 | {100 * metrics['f1']:.2f} % |",
        "",
        f"The generated files were {'kept' if args.keep else 'removed'} after the run.",
    ]
    publish(lines, args.out)


if __name__ == "__main__":
    main()
