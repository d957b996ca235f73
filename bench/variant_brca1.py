"""BRCA1 variant effect (issue 20): each modality alone and fused, split by position, against EVmutation and
logistic regression / gradient boosting on all features.

For each seed the 117 positions are dealt into 5 grouped folds (no residue in both train and test); every model
is trained on 4 folds and scored on the fifth. A seed's figure is the mean over its 5 test folds; the table gives
mean ± std over seeds. Classification: loss of function (AUROC, AUPRC); regression: the function score (Spearman).

    python bench/variant_brca1.py            # 5 seeds x 5 folds -> docs/results/variant_brca1.md
    python bench/variant_brca1.py --quick    # 1 seed, printed only
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
from scipy.stats import spearmanr  # noqa: E402
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor  # noqa: E402
from sklearn.linear_model import LogisticRegression, RidgeCV  # noqa: E402
from sklearn.metrics import average_precision_score, roc_auc_score  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from modalfuse import MultimodalModel  # noqa: E402
from modalfuse.datasets import resolve_roots  # noqa: E402
from modalfuse.datasets.brca1 import (  # noqa: E402
    CLASS_TARGET, CONSERVATION, DOMAIN_CATEGORICAL, FOLDER, SCORE_TARGET, STRUCTURE_CATEGORICAL, STRUCTURE_NUMERIC,
    brca1_modalities, brca1_table, describe_reference, position_folds,
)

FOLDS = 5
WINDOW = 7  # residues each side of the variant in the main context modality
SHORT_WINDOW = 1  # a second, short context (±1), which generalises better across positions
MODALITIES = ["context", "conservation", "structure", "domain"]
FUSIONS = ["concat", "gated", "late"]
MODEL = {"head_hidden": 32, "dropout": 0.2}
TRAIN = {"max_epochs": 60, "batch_size": 64, "lr": 1e-3, "patience": 10, "progress": False, "threads": 1, "val_fraction": 0.15}


def design_matrix(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """All features for the classical baselines: numbers as they are, categoricals and residues one-hot."""
    cats = pd.get_dummies(frame[[*STRUCTURE_CATEGORICAL, *DOMAIN_CATEGORICAL, "aa_ref", "aa_alt"]].astype(str))
    nums = frame[[*CONSERVATION, *STRUCTURE_NUMERIC]].astype(float)
    out = pd.concat([nums, cats], axis=1).astype(float)
    return out.reindex(columns=columns, fill_value=0.0) if columns else out


def scores(task: str, y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    if task == "classification":
        return {"auroc": roc_auc_score(y, pred), "auprc": average_precision_score(y, pred)}
    return {"spearman": float(spearmanr(y, pred).statistic)}


def classical(kind: str, task: str, train: pd.DataFrame, test: pd.DataFrame, target: str, seed: int) -> np.ndarray:
    xtr = design_matrix(train, [])
    xte = design_matrix(test, list(xtr.columns))
    if kind == "linear":
        scaler = StandardScaler().fit(xtr)
        xtr, xte = scaler.transform(xtr), scaler.transform(xte)
        if task == "classification":
            return LogisticRegression(C=0.1, max_iter=2000).fit(xtr, train[target]).predict_proba(xte)[:, 1]
        return RidgeCV(alphas=np.logspace(-2, 3, 12)).fit(xtr, train[target]).predict(xte)
    est = (HistGradientBoostingClassifier if task == "classification" else HistGradientBoostingRegressor)(
        max_iter=200, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=10, random_state=seed
    )
    est.fit(xtr, train[target])
    return est.predict_proba(xte)[:, 1] if task == "classification" else est.predict(xte)


def neural(mods: list[str], fusion: str, task: str, train: pd.DataFrame, test: pd.DataFrame, target: str, seed: int, window: int = WINDOW) -> tuple[np.ndarray, pd.DataFrame]:
    modalities = [m for m in brca1_modalities(window) if m.name in mods]
    model = MultimodalModel(
        modalities, target, model={**MODEL, "fusion": {"name": fusion, "dim": 32}}, train={**TRAIN, "seed": seed}, task=task, cache_dir="none"
    )
    model.fit(train)
    frame = model.predict_frame(test)
    pred = frame["proba_1"].to_numpy() if task == "classification" else frame["prediction"].to_numpy(dtype=float)
    return pred, frame


def main() -> None:
    args = parse_args("BRCA1 variant effect: modalities alone and fused, grouped by position", "variant_brca1")
    load_start = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    t_start = time.perf_counter()
    root = resolve_roots("brca1", args.data_dir, download=False)[FOLDER]
    frame, skips, reference = brca1_table(root, WINDOW)
    short, _, _ = brca1_table(root, SHORT_WINDOW)
    assert (short["aa_pos"].to_numpy() == frame["aa_pos"].to_numpy()).all()
    seeds = list(range(args.seeds))
    quick = args.quick
    if quick:
        TRAIN["max_epochs"] = 15
    rows: dict[tuple[str, str], dict[str, list[float]]] = {}
    seconds: dict[tuple[str, str], list[float]] = {}
    weights: list[pd.DataFrame] = []
    labels = [("EVmutation score alone", None), ("logistic/ridge regression, all features", "linear"), ("gradient boosting, all features", "boosting")]
    labels += [(f"{m} alone" + (f" (±{WINDOW})" if m == "context" else ""), ("neural", [m], "concat", WINDOW)) for m in MODALITIES]
    labels += [(f"context alone (±{SHORT_WINDOW})", ("neural", ["context"], "concat", SHORT_WINDOW))]
    labels += [(f"fused all 4 (context ±{WINDOW}): {f}", ("neural", MODALITIES, f, WINDOW)) for f in FUSIONS]
    labels += [(f"fused all 4 (context ±{SHORT_WINDOW}): concat", ("neural", MODALITIES, "concat", SHORT_WINDOW))]
    labels += [("fused conservation + structure + domain: concat", ("neural", MODALITIES[1:], "concat", WINDOW))]
    only = set(args.only.split(",")) if args.only else None
    for task, target in (("classification", CLASS_TARGET), ("regression", SCORE_TARGET)):
        for seed in seeds:
            folds = position_folds(frame["aa_pos"].to_numpy(), FOLDS, seed)
            per_fold: dict[str, list[dict[str, float]]] = {}
            for k in range(FOLDS):
                train, test = frame[folds != k].reset_index(drop=True), frame[folds == k].reset_index(drop=True)
                short_train, short_test = short[folds != k].reset_index(drop=True), short[folds == k].reset_index(drop=True)
                y = test[target].to_numpy()
                for label, how in labels:
                    if only and label not in only:
                        continue
                    t0 = time.perf_counter()
                    if how is None:  # low EVmutation = damaging: rank LOF by −score, the function score by +score
                        sign = -1.0 if task == "classification" else 1.0
                        pred = sign * test["prediction_epistatic"].to_numpy()
                    elif isinstance(how, str):
                        pred = classical(how, task, train, test, target, seed)
                    else:
                        tr, te = (train, test) if how[3] == WINDOW else (short_train, short_test)
                        pred, out = neural(how[1], how[2], task, tr, te, target, seed, how[3])
                        if how[2] == "gated" and len(how[1]) > 1:
                            w = out[[f"weight_{m}" for m in how[1]]].copy()
                            w["task"], w["seed"], w["fold"], w["label"] = task, seed, k, test[CLASS_TARGET].to_numpy()
                            w["domain"], w["aa_pos"] = test["domain"].to_numpy(), test["aa_pos"].to_numpy()
                            weights.append(w)
                    seconds.setdefault((task, label), []).append(time.perf_counter() - t0)
                    per_fold.setdefault(label, []).append(scores(task, y, pred))
            for label, results in per_fold.items():
                agg = {key: statistics.fmean(r[key] for r in results) for key in results[0]}
                bucket = rows.setdefault((task, label), {})
                for key, v in agg.items():
                    bucket.setdefault(key, []).append(v)
                print(f"  [{task}] seed {seed} {label}: " + "  ".join(f"{k}={v:.4f}" for k, v in agg.items()), flush=True)
    total = time.perf_counter() - t_start
    load_end = os.getloadavg()
    info = machine_info(args.threads)
    ev_all = roc_auc_score(frame[CLASS_TARGET], -frame["prediction_epistatic"])
    ev_rho = spearmanr(frame[SCORE_TARGET], frame["prediction_epistatic"]).statistic

    lines = [
        "# BRCA1 variant effect: sequence context, conservation, structure, domain — alone and fused",
        "",
        f"- date: {started}",
        f"- machine: {info['cores']} cores, {info['cpu']}; torch {info['torch']} ({args.threads} thread); python {info['python']}; {info['platform']}",
        f"- load average (1/5/15 min) at start {load_start[0]:.2f} / {load_start[1]:.2f} / {load_start[2]:.2f}, "
        f"at end {load_end[0]:.2f} / {load_end[1]:.2f} / {load_end[2]:.2f} (the machine is shared; timings are indicative)",
        f"- command (from the repository root): `{command_line()}`",
        f"- data: `{FOLDER}/BRCA1_DMS_annotated.csv`, {len(frame)} variants at {frame['aa_pos'].nunique()} positions "
        f"({int(frame[CLASS_TARGET].sum())} loss of function); {skips.count} rows skipped by the variant checks",
        f"- split: {FOLDS} folds grouped by position (no residue in train and test), positions dealt at random per seed; "
        f"seeds {', '.join(map(str, seeds))} (seed = fold assignment, model init, validation carve-out). "
        "Each seed's figure is the mean over its 5 test folds; cells are mean ± sample std over seeds.",
        f"- total wall time: {total / 60:.1f} min",
        "",
        f"Reference sequence: the data folder holds none, so it is reconstructed from the reference residues named by "
        f"the annotated, Findlay and EVmutation tables: {describe_reference(reference)} (UniProt P38398 numbering; "
        f"nothing outside these runs is used). Windows are ±{WINDOW} residues; no window of these variants reaches an "
        "uncovered position, so no gap symbol was needed (the `-` symbol is in the alphabet for others).",
        "",
        f"Modalities: `context` = the 2·{WINDOW} + 1 (or 2·{SHORT_WINDOW} + 1) reference residues centred on the variant + the alternative residue "
        "(sequence kind, `sequence_positional_cnn`); `conservation` = PhyloP at codon positions −1/0/+1 + EVmutation "
        "(vector); `structure` = ZoomVar Q(SASA), number of interface contacts, surface/core/interface (tabular); "
        "`domain` = Pfam domain, disorder, disorder × interface class (tabular, categorical).",
        "",
        f"Single-feature check on all {len(frame)} rows: AUROC of −EVmutation {ev_all:.3f} (the data card says 0.906); "
        f"Spearman of EVmutation with the function score {ev_rho:.3f}.",
        "",
        "## Loss of function (classification)",
        "",
        "| model | AUROC | AUPRC | s / fold |",
        "|---|---:|---:|---:|",
    ]
    for (task, label), metrics in rows.items():
        if task == "classification":
            lines.append(f"| {label} | {mean_std(metrics['auroc'], digits=3)} | {mean_std(metrics['auprc'], digits=3)} | {statistics.fmean(seconds[(task, label)]):.1f} |")
    lines += ["", f"AUPRC of a random ranking = the LOF share, {frame[CLASS_TARGET].mean():.3f}.", "", "## Function score (regression)", "",
              "| model | Spearman | s / fold |", "|---|---:|---:|"]
    for (task, label), metrics in rows.items():
        if task == "regression":
            lines.append(f"| {label} | {mean_std(metrics['spearman'], digits=3)} | {statistics.fmean(seconds[(task, label)]):.1f} |")
    if weights:
        w = pd.concat(weights, ignore_index=True)
        cols = [f"weight_{m}" for m in MODALITIES]
        lines += [
            "",
            "## Per-variant modality weights (gated fusion, test rows)",
            "",
            "`predict_frame` gives each variant a weight per modality (the GMU gate, averaged over its features). "
            "Means over all test predictions of all seeds and folds; `largest` is the share of variants whose largest weight is that modality's.",
            "",
            "| task | rows | " + " | ".join(MODALITIES) + " | largest: " + " / ".join(MODALITIES) + " |",
            "|---|---|" + "---:|" * (len(MODALITIES) + 1),
        ]
        for (task, group), part in w.groupby(["task", "label"]):
            share = part[cols].to_numpy().argmax(axis=1)
            shares = " / ".join(f"{np.mean(share == j):.2f}" for j in range(len(cols)))
            lines.append(f"| {task} | {'LOF' if group == 1 else 'functional'} ({len(part)}) | " + " | ".join(f"{part[c].mean():.3f}" for c in cols) + f" | {shares} |")
        for (task, dom), part in w.groupby(["task", "domain"]):
            lines.append(f"| {task} | domain {dom} ({len(part)}) | " + " | ".join(f"{part[c].mean():.3f}" for c in cols) + " | |")
    lines += ["", "## Settings", "", f"- neural models: `MultimodalModel`, model {MODEL} + fusion dim 32, train {TRAIN}; "
              "encoders: context `sequence_positional_cnn` (embed 8, 8 filters, kernel 3, dim 16), the others MLPs with 32 hidden units, dim 16; "
              "`X alone` rows are the same network with one modality (concat fusion of one input).",
              "- logistic regression: standardised numeric + one-hot categoricals and reference/alternative residues, C = 0.1; "
              "ridge for the score (alpha by internal CV); gradient boosting: sklearn HistGradientBoosting, 200 iterations, "
              "learning rate 0.05, 15 leaves, min 10 rows per leaf.", ""]
    publish(lines, args.out)


if __name__ == "__main__":
    main()
