"""BRCA1 variant effect: which modality carries each variant's prediction (modality Shapley values).

The fused model of bench/variant_brca1.py (conservation + structure + domain, concat), trained on 4 of 5
position-grouped folds and explained on the held-out fold, for every fold of one seed: per variant, exact
Shapley values of the predicted class's probability over the modality subsets (the missing-modality path),
then their means by class and by domain, and the pair interactions.

    python bench/variant_brca1_explain.py        # -> docs/results/variant_brca1_attribution.md
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_line, machine_info, parse_args, publish  # noqa: E402  (sets the environment first)

import pandas as pd  # noqa: E402
from variant_brca1 import FOLDS, MODEL, TRAIN, WINDOW  # noqa: E402

from modalfuse import MultimodalModel  # noqa: E402
from modalfuse.datasets import resolve_roots  # noqa: E402
from modalfuse.datasets.brca1 import CLASS_TARGET, FOLDER, brca1_modalities, brca1_table, position_folds  # noqa: E402
from modalfuse.evaluate.benchmark import load_average, markdown_table  # noqa: E402

FUSED = ["conservation", "structure", "domain"]


def main() -> None:
    args = parse_args("BRCA1: modality Shapley values of the fused model, per variant", "variant_brca1_attribution")
    started, load_start, t0 = time.strftime("%Y-%m-%d %H:%M:%S %Z"), load_average(), time.perf_counter()
    root = resolve_roots("brca1", args.data_dir, download=False)[FOLDER]
    frame, _, _ = brca1_table(root, WINDOW)
    folds = position_folds(frame["aa_pos"].to_numpy(), FOLDS, seed=0)
    modalities = [m for m in brca1_modalities(WINDOW) if m.name in FUSED]
    parts = []
    for k in range(FOLDS):
        train, test = frame[folds != k], frame[folds == k]
        model = MultimodalModel(modalities, CLASS_TARGET, model={**MODEL, "fusion": {"name": "concat", "dim": 32}},
                                train={**TRAIN, "seed": 0}, task="classification", cache_dir="none").fit(train)
        att = model.explain(test.reset_index(drop=True)).frame
        att = att[att["quantity"] == "predicted_proba"]
        att["fold"] = k
        parts.append(att)
    att = pd.concat(parts, ignore_index=True)
    cols = [f"shapley_{m}" for m in FUSED]
    by_class = att.groupby("target")[cols].mean().rename(columns=lambda c: c.replace("shapley_", "")).reset_index()
    by_class.insert(1, "n", att.groupby("target").size().to_numpy())
    top = att[cols].abs().to_numpy().argmax(axis=1)
    shares = pd.DataFrame({"modality": FUSED, "share of variants where it has the largest absolute Shapley value": [f"{(top == j).mean():.1%}" for j in range(len(FUSED))]})
    inter_cols = [c for c in att.columns if c.startswith("interaction_")]
    inter = pd.DataFrame({"pair": [c.replace("interaction_", "").replace("_x_", " × ") for c in inter_cols],
                          "mean interaction": [f"{att[c].mean():+.4f}" for c in inter_cols]})
    efficiency = (att[cols].sum(axis=1) - (att["value_all"] - att["value_none"])).abs().max()
    lines = [
        "# BRCA1: modality attribution of the fused model (conservation + structure + domain)", "",
        f"- date: {started}; machine: {machine_info(args.threads)['cores']} cores, {machine_info(args.threads)['cpu']}",
        f"- load average (1 / 5 / 15 min): {load_start} at start, {load_average()} at end; {time.perf_counter() - t0:.0f} s",
        f"- command: `{command_line()}`; seed 0, {FOLDS} position-grouped folds (each variant explained by the model that did not see its position)",
        "- quantity: the probability of the class predicted with all modalities; exact Shapley values over the 2³ modality subsets, a missing modality",
        f"  is the model's own missing-modality path; Shapley values sum to f(all) − f(none) (max deviation {efficiency:.1e})", "",
        "Mean Shapley value per modality, by measured class (1 = loss of function):", "",
        markdown_table(by_class.round(4)), "", markdown_table(shares), "", "Pair interactions (negative: redundant, positive: complementary):", "",
        markdown_table(inter), "",
    ]
    publish(lines, args.out)


if __name__ == "__main__":
    main()
