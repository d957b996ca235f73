"""preset: auto against its own linear baselines and the best fixed recipe in docs/results, mean ± std over seeds.

For each seed s: `select` (3-fold CV on the training rows, fold seed s, model seed s) chooses among the portfolio of
modalfuse/auto.py, the choice is trained on all training rows and scored on the test split; the two linear baselines
(identity encoders + logistic / margin head) are trained on all training rows with the same seed and scored too.
The best fixed recipe is read from the dataset's docs/results table (5 seeds, same split).

    .venv/bin/python bench/auto_preset.py                  # handwritten, 5 seeds; writes docs/results/auto_preset_handwritten.md
    .venv/bin/python bench/auto_preset.py --dataset cub    # CUB, split seed = seed
    .venv/bin/python bench/auto_preset.py --dataset basicmotions    # the UEA split; linear baselines on flattened channels
    .venv/bin/python bench/auto_preset.py --dataset spoken_digits  # recipe: bench/configs/spoken_digits.yaml's fused concat
    .venv/bin/python bench/auto_preset.py --seeds 1 --out -    # one seed, print only

Datasets without an examples/*_auto.yaml take the configured recipe from their benchmark config's "fused concat" row
(3 folds). Where no modality is a vector or time series (audio, images, text, tables) the portfolio holds no linear
baseline; the table says so.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, RESULTS_DIR, command_line, default_data_dir, machine_info, publish, recipe_model, with_encoder  # noqa: E402

RECIPES = {"handwritten": REPO / "examples" / "handwritten_auto.yaml", "cub": REPO / "examples" / "cub_auto.yaml",
           "basicmotions": REPO / "examples" / "basicmotions_auto.yaml"}
FIXED = {"handwritten": RESULTS_DIR / "handwritten.md", "cub": RESULTS_DIR / "cub_fusions.md", "basicmotions": RESULTS_DIR / "basicmotions.md",
         "spoken_digits": RESULTS_DIR / "spoken_digits.md", "womens_clothing": RESULTS_DIR / "womens_clothing.md"}
#: datasets whose configured recipe is a benchmark config's row (bench/configs/NAME.yaml, the row's label)
FROM_CONFIG = {"spoken_digits": "fused concat", "womens_clothing": "fused concat"}
#: rows of those tables that are peers run beside ours, not recipes of ours
PEERS = ("MiniRocket",)
#: the benchmark configs' encoder for every modality, and whether the split follows the seed
ENCODER = {"cub": (64, {"hidden": [256], "dropout": 0.5}),
           "basicmotions": (64, {"widths": [32, 64, 64], "kernel_size": 7, "dropout": 0.1})}
SPLIT_BY_SEED = {"cub"}


def best_fixed(path: Path) -> tuple[str, float, float]:
    """(row, mean, std) of the highest accuracy of a fused row (not "X only") in a benchmark table (a fraction)."""
    best = ("?", 0.0, 0.0)
    for line in path.read_text().splitlines():
        m = re.match(r"\| ([^|]+) \| ([0-9.]+) ± ([0-9.]+) \|", line)
        if m and "only" not in m[1] and not m[1].startswith(PEERS) and float(m[2]) > best[1]:
            best = (m[1].strip(), float(m[2]), float(m[3]))
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="handwritten", choices=sorted({*RECIPES, *FROM_CONFIG}))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--data-dir", default=default_data_dir())
    p.add_argument("--out", default=None, help="default docs/results/auto_preset_DATASET.md; '-' prints only")
    args = p.parse_args()
    args.out = args.out or str(RESULTS_DIR / f"auto_preset_{args.dataset}.md")
    import torch

    torch.set_num_threads(1)
    from modalfuse.api import MultimodalModel
    from modalfuse.auto import PORTFOLIO, derive, markdown, select
    from modalfuse.config import AutoConfig, load_config
    from modalfuse.datasets import load_dataset

    cfg = load_config(RECIPES[args.dataset]) if args.dataset in RECIPES else None
    recipe = f"`{RECIPES[args.dataset].relative_to(REPO)}`" if cfg else f"bench/configs/{args.dataset}.yaml, row {FROM_CONFIG.get(args.dataset)!r}"
    load_start = os.getloadavg()
    scores: dict[str, list[float]] = {"auto": [], "linear logistic": [], "linear margin": []}
    picks, tables, start = Counter(), [], time.perf_counter()
    for seed in range(args.seeds):
        ds = load_dataset(args.dataset, data_dir=args.data_dir, download=False, **({"seed": seed} if args.dataset in SPLIT_BY_SEED else {}))
        if cfg is not None:
            cfg.data.task = ds.task
            cfg.train.seed, cfg.auto.seed = seed, seed
            mods = [with_encoder(m, *ENCODER[args.dataset]) for m in ds.modalities] if args.dataset in ENCODER else ds.modalities
            base, auto = MultimodalModel.from_config(cfg, mods, ds.target), cfg.auto
        else:
            base, auto = recipe_model(args.dataset, FROM_CONFIG[args.dataset], ds, seed), AutoConfig(folds=3, seed=seed)
        chosen, rows = select(base, ds.train, auto)
        picks[next(r["candidate"] for r in rows if r.get("chosen"))] += 1
        tables.append((seed, markdown(rows, auto)))
        scores["auto"].append(chosen.fit(ds.train).evaluate(ds.test)["accuracy"])
        base.task_ = ds.task
        for (label, baseline, make), key in zip(PORTFOLIO[:2], ("linear logistic", "linear margin")):
            change = make(base, len(ds.train), auto)
            if change is not None:  # None: no modality a linear baseline can read (vector, timeseries)
                scores[key].append(derive(base, change).fit(ds.train).evaluate(ds.test)["accuracy"])
        scores = {k: v for k, v in scores.items() if v}
        print(f"seed {seed}: " + ", ".join(f"{k} {100 * v[-1]:.2f} %" for k, v in scores.items()), file=sys.stderr, flush=True)
    fixed = best_fixed(FIXED[args.dataset])
    ms = {k: (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0) for k, v in scores.items()}
    linear = [ms[k][0] for k in ("linear logistic", "linear margin") if k in ms]
    best_linear = max(linear) if linear else None
    noise = max(ms["auto"][1], fixed[2], 1.0 / len(ds.test))  # one test sample is the resolution of the split
    lines = [f"# preset: auto on {args.dataset}", "",
             f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Command: `{command_line()}`. Configured recipe: {recipe}.",
             "Machine: " + ", ".join(f"{k} {v}" for k, v in machine_info(1).items()) + ".",
             f"Seeds 0..{args.seeds - 1} (fold seed and model seed{', and split seed' if args.dataset in SPLIT_BY_SEED else ''}); {len(ds.train)} train / {len(ds.test)} test rows; "
             f"wall time {time.perf_counter() - start:.0f} s; load average (1/5/15 min) at start {' / '.join(f'{x:.2f}' for x in load_start)}, "
             f"at end {' / '.join(f'{x:.2f}' for x in os.getloadavg())} (a shared machine: times are not comparable, accuracies are).", "",
             "| model | test accuracy % (mean ± std) |", "|---|---|"]
    for k, (m, s) in ms.items():
        lines.append(f"| {k} | {100 * m:.2f} ± {100 * s:.2f} |")
    lines.append(f"| best fixed recipe in docs/results ({fixed[0]}) | {100 * fixed[1]:.2f} ± {100 * fixed[2]:.2f} |")
    lines += ["", f"Chosen by cross-validation: {dict(picks)}.", "",
              (f"- auto ≥ best linear baseline: **{ms['auto'][0] >= best_linear}** ({100 * ms['auto'][0]:.2f} vs {100 * best_linear:.2f} %)"
               if best_linear is not None else "- auto ≥ best linear baseline: no linear baseline applies (no vector or timeseries modality)"),
              f"- auto within seed noise of the best fixed recipe (gap ≤ {100 * noise:.2f} points, the larger of the two stds and one "
              f"test sample): **{fixed[1] - ms['auto'][0] <= noise}** (gap {100 * (fixed[1] - ms['auto'][0]):.2f} points)", "",
              "## Cross-validation tables", ""]
    for seed, table in tables:
        lines += [f"Seed {seed}:", "", table.split("\n", 2)[2]]
    publish(lines, None if args.out == "-" else args.out)


if __name__ == "__main__":
    main()
