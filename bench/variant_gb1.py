"""GB1 double mutants (issue 20): mutant sequence + structure + single-mutant prior, alone and fused, on the data
set's own test split, against an additive single-mutant model and MAVE-NN's published figure; also a size test.

Neural rows train on a random subsample of the training rows (``--train-rows``, several seeds) because 2 shared
CPU cores cannot fit every configuration on all 477,854 rows; one fused model is trained on all training rows
(``--full-epochs``; 0 skips it). Early stopping uses the data set's validation rows; every figure is on all
26,364 test rows.

    python bench/variant_gb1.py                # -> docs/results/variant_gb1.md
    python bench/variant_gb1.py --quick        # 1 seed, 5,000 rows, printed only
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_line, machine_info, mean_std, parse_args, publish  # noqa: E402  (sets the environment first)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import pearsonr, spearmanr  # noqa: E402
from sklearn.ensemble import HistGradientBoostingRegressor  # noqa: E402
from sklearn.isotonic import IsotonicRegression  # noqa: E402
from sklearn.linear_model import LinearRegression  # noqa: E402

from modalfuse import MultimodalModel  # noqa: E402
from modalfuse.datasets import resolve_roots  # noqa: E402
from modalfuse.datasets.gb1 import FOLDER, PRIOR, gb1_modalities, gb1_table, structure_columns  # noqa: E402

MODEL = {"fusion": {"name": "concat", "dim": 64}, "head_hidden": 64, "dropout": 0.1}
TRAIN = {"max_epochs": 15, "batch_size": 512, "lr": 2e-3, "patience": 3, "progress": False, "threads": 1, "weight_decay": 0.0}
PUBLISHED = (
    "MAVE-NN additive global-epistasis model (Tareen et al. 2022, Genome Biology 23:98, Fig. 3b; same data and "
    "training/validation/test split): R² = 0.936 ± 0.003, where R² is the squared Pearson correlation on 5,000 random test rows "
    "(paper/figure_scripts/helper_functions.py `my_rsquared` in github.com/jbkinney/mavenn)"
)


def metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    residual = np.sum((y - pred) ** 2)
    total = np.sum((y - y.mean()) ** 2)
    return {"spearman": float(spearmanr(y, pred).statistic), "r2": float(1 - residual / total), "pearson2": float(pearsonr(y, pred).statistic ** 2)}


def extra(parser) -> None:
    parser.add_argument("--train-rows", type=int, default=50_000, help="training rows sampled per seed for the neural rows (default 50,000)")
    parser.add_argument("--full-epochs", type=int, default=8, help="max epochs of the fused model on all training rows (0: skip it)")


def main() -> None:
    args = parse_args("GB1 double mutants: sequence + structure + single-mutant prior", "variant_gb1", extra=extra)
    load_start = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    t_start = time.perf_counter()
    if args.quick:
        args.train_rows, args.full_epochs = 5_000, 0
        TRAIN["max_epochs"] = 3
    root = resolve_roots("gb1", args.data_dir, download=False)[FOLDER]
    t0 = time.perf_counter()
    frame, skips = gb1_table(root)
    build_seconds = time.perf_counter() - t0
    train = frame[frame["set"] == "training"].reset_index(drop=True)
    val = frame[frame["set"] == "validation"].reset_index(drop=True)
    test = frame[frame["set"] == "test"].reset_index(drop=True)
    y_test = test["y"].to_numpy()
    results: dict[str, dict[str, list[float]]] = {}
    timing: dict[str, list[float]] = {}
    notes: dict[str, str] = {}

    def record(label: str, result: dict[str, float], seconds: float) -> None:
        for k, v in result.items():
            results.setdefault(label, {}).setdefault(k, []).append(v)
        timing.setdefault(label, []).append(seconds)
        print(f"  {label}: " + "  ".join(f"{k}={v:.4f}" for k, v in result.items()) + f"  ({seconds:.1f} s)", flush=True)

    # ------------------------------------------------------------ baselines on all training rows
    t0 = time.perf_counter()
    linear = LinearRegression().fit(train[["additive"]], train["y"])
    record("additive single-mutant model (linear in s_a + s_b)", metrics(y_test, linear.predict(test[["additive"]])), time.perf_counter() - t0)
    t0 = time.perf_counter()
    iso = IsotonicRegression(out_of_bounds="clip").fit(train["additive"], train["y"])
    record("additive + monotone curve (isotonic in s_a + s_b)", metrics(y_test, iso.predict(test["additive"])), time.perf_counter() - t0)
    t0 = time.perf_counter()
    cols = [*PRIOR, *structure_columns()]
    gbm = HistGradientBoostingRegressor(max_iter=300, learning_rate=0.1, max_leaf_nodes=63, random_state=0, early_stopping=False)
    gbm.fit(train[cols], train["y"])
    record("gradient boosting on prior + structure (all training rows)", metrics(y_test, gbm.predict(test[cols])), time.perf_counter() - t0)

    # ------------------------------------------------------------ neural rows on subsamples
    mods = {m.name: m for m in gb1_modalities()}
    configs = [("mutant alone", ["mutant"], "concat"), ("structure alone", ["structure"], "concat"), ("prior alone", ["prior"], "concat"),
               ("fused: concat", ["mutant", "structure", "prior"], "concat"), ("fused: gated", ["mutant", "structure", "prior"], "gated")]
    only = set(args.only.split(",")) if args.only else None
    weights: list[pd.DataFrame] = []
    epochs: dict[str, list[int]] = {}
    for seed in range(args.seeds):
        sub = train.sample(n=min(args.train_rows, len(train)), random_state=seed)
        for name, names, fusion in configs:
            label = f"{name} ({len(sub):,} training rows)"
            if only and name not in only:
                continue
            model = MultimodalModel([mods[n] for n in names], "y", model={**MODEL, "fusion": {**MODEL["fusion"], "name": fusion}},
                                    train={**TRAIN, "seed": seed}, task="regression", cache_dir="none")
            t0 = time.perf_counter()
            model.fit(sub, val=val)
            out = model.predict_frame(test)
            seconds = time.perf_counter() - t0
            epochs.setdefault(label, []).append(int(model.history.get("epochs") or 0))
            record(label, metrics(y_test, out["prediction"].to_numpy(dtype=float)), seconds)
            if fusion == "gated":
                w = out[[f"weight_{n}" for n in names]].copy()
                w["touching"] = test["touching"].to_numpy()
                w["seed"] = seed
                weights.append(w)

    # ------------------------------------------------------------ size test: all training rows
    full_label = f"fused: concat (all {len(train):,} training rows, 1 seed)"
    if args.full_epochs > 0 and (not only or "full" in only):
        model = MultimodalModel(list(mods.values()), "y", model=MODEL, train={**TRAIN, "seed": 0, "max_epochs": args.full_epochs},
                                task="regression", cache_dir="none")
        t0 = time.perf_counter()
        model.fit(train, val=val)
        fit_seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        out = model.predict_frame(test)
        predict_seconds = time.perf_counter() - t1
        epochs[full_label] = [int(model.history.get("epochs") or 0)]
        record(full_label, metrics(y_test, out["prediction"].to_numpy(dtype=float)), fit_seconds + predict_seconds)
        notes["full"] = (f"All-rows fit: {fit_seconds / 60:.1f} min for {epochs[full_label][0]} epochs over {len(train):,} rows "
                         f"(featurisation included, one torch thread), {predict_seconds:.1f} s to predict {len(test):,} test rows.")

    total = time.perf_counter() - t_start
    load_end = os.getloadavg()
    info = machine_info(args.threads)
    lines = [
        "# GB1 double mutants: mutant sequence + structure + single-mutant prior",
        "",
        f"- date: {started}",
        f"- machine: {info['cores']} cores, {info['cpu']}; torch {info['torch']} ({args.threads} thread); python {info['python']}; {info['platform']}",
        f"- load average (1/5/15 min) at start {load_start[0]:.2f} / {load_start[1]:.2f} / {load_start[2]:.2f}, "
        f"at end {load_end[0]:.2f} / {load_end[1]:.2f} / {load_end[2]:.2f} (the machine is shared; timings are indicative)",
        f"- command (from the repository root): `{command_line()}`",
        f"- data: `{FOLDER}/gb1_data.csv.gz` (Olson et al. 2014 via MAVE-NN 1.1.4): {len(frame):,} double mutants, "
        f"split by the file's `set` column: {len(train):,} training / {len(val):,} validation / {len(test):,} test; "
        f"{skips.count} rows skipped by the variant checks; building every feature column took {build_seconds:.1f} s",
        (f"- subsampled neural rows: seeds {', '.join(map(str, range(args.seeds)))}, each on its own random {args.train_rows:,} training rows "
         "(the seed also sets the initialisation and batch order); early stopping on the validation rows; cells are mean ± sample std over seeds"
         if epochs.keys() - {full_label} else "- no subsampled neural rows in this run (`--only`); the baselines are deterministic (± 0)"),
        f"- total wall time: {total / 60:.1f} min",
        "",
        "This split is MAVE-NN's random split of Olson's double mutants (`mavenn.split_dataset`), not a FLIP split: FLIP's "
        "GB1 tasks (`one_vs_rest`, `two_vs_rest`, `three_vs_rest`, `low_vs_high`, `sampled`) use the four-site library of "
        "Wu et al. 2016, a different data set, so FLIP's figures do not apply here.",
        "",
        f"Published figure for this data and split: {PUBLISHED}. Our `Pearson²` column is the same statistic on all test rows.",
        "",
        "| model | Spearman | R² (1 − SSE/SST) | Pearson² | s / run | epochs |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, m in results.items():
        ep = f"{statistics.fmean(epochs[label]):.1f}" if label in epochs else "–"
        lines.append(f"| {label} | {mean_std(m['spearman'], digits=4)} | {mean_std(m['r2'], digits=4)} | {mean_std(m['pearson2'], digits=4)} | "
                     f"{statistics.fmean(timing[label]):.1f} | {ep} |")
    lines += ["", "Modalities: `mutant` = the 55-residue mutant sequence (sequence kind, `sequence_positional_cnn`: embed 8, 16 filters, kernel 3); "
              "`structure` = for each mutated site, Cβ contacts (< 8 Å, ≥ 3 apart in sequence) and burial (Cβ within 10 Å, heavy atoms within 10 Å) "
              "computed from 1pga.pdb by the project's own PDB reader, PSIPRED coil/helix/strand probabilities from gb1.ss2, and for the pair the Cβ–Cβ "
              "distance, a contact flag and log sequence separation (vector, MLP); `prior` = the two single-mutant log2 enrichments "
              "(from Olson's Table S2 counts, computed like `y`) and their sum (vector, MLP). The additive rows use only the sum.",
              "", f"Settings: model {MODEL}, train {TRAIN} (the all-rows model: max_epochs = --full-epochs = {args.full_epochs}); gradient boosting: sklearn HistGradientBoosting, 300 iterations, "
              "learning rate 0.1, 63 leaves, on all training rows."]
    if notes:
        lines += ["", *notes.values()]
    if weights:
        w = pd.concat(weights, ignore_index=True)
        wc = [c for c in w.columns if c.startswith("weight_")]
        lines += ["", "Per-variant modality weights of the gated fusion (test rows, all seeds): mean weight by whether the two sites touch (Cβ < 8 Å).", "",
                  "| pair | rows | " + " | ".join(c[7:] for c in wc) + " |", "|---|---:|" + "---:|" * len(wc)]
        for touch, part in w.groupby("touching"):
            lines.append(f"| {'touching' if touch else 'apart'} | {len(part):,} | " + " | ".join(f"{part[c].mean():.3f}" for c in wc) + " |")
    lines.append("")
    publish(lines, args.out)


if __name__ == "__main__":
    main()
