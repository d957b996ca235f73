"""Uncertainty, missing views, conflict and calibration on the 6-view handwritten digits; noise tracking on regression.

Part A (handwritten, TMC split; 10 % of the training rows held out, stratified per seed, for
best-epoch selection and temperature scaling; the test split is only scored): for concat, late,
inverse_variance and evidential fusion trained with per-sample modality dropout —
clean accuracy, accuracy with each view missing, all 63 view subsets, the RCML conflict
protocol (accuracy and AUROC of uncertainty for wrong vs right), and ECE before/after
temperature scaling.

Part B (synthetic regression, generated here): y depends on a 32-d latent z; view "steady" sees z
with fixed noise, view "noisy" sees z with a per-sample noise level σᵢ ~ U(0, 2). Inverse-variance
fusion should give the noisy view less weight where σᵢ is large (Spearman ρ(σᵢ, wᵢ) ≤ −0.7) and
beat the plain mean of the two branch predictions in MSE.

    python bench/uncertainty.py [--seeds 5] [--data-dir ../shared/data]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr
from sklearn.model_selection import train_test_split

from modalfuse import MultimodalModel
from modalfuse.config import ModalityConfig
from modalfuse.datasets import load_dataset
from modalfuse.evaluate.benchmark import machine_info, markdown_table
from modalfuse.evaluate.robustness import conflict_report, subset_accuracy

REPO = Path(__file__).resolve().parents[1]
METHODS = ["concat", "late", "inverse_variance", "evidential"]
#: latent width of the synthetic regression: wide enough that a view's noise level can be read off the view itself
LATENT = 32
RECIPE = {"dim": 64, "hidden": [256], "enc_dropout": 0.2, "head_hidden": 0, "dropout": 0.1, "lr": 1e-3,
          "weight_decay": 1e-4, "batch_size": 64, "max_epochs": 20, "modality_dropout": 0.3}


def model_for(mods, target, fusion, seed, task="classification", **extra) -> MultimodalModel:
    mods = [ModalityConfig(name=m.name, kind=m.kind, encoder={"dim": RECIPE["dim"], "options": {"hidden": RECIPE["hidden"], "dropout": RECIPE["enc_dropout"]}}) for m in mods]
    train = {"max_epochs": RECIPE["max_epochs"], "batch_size": RECIPE["batch_size"], "lr": RECIPE["lr"], "weight_decay": RECIPE["weight_decay"],
             "patience": 0, "seed": seed, "progress": False, "threads": 1, "modality_dropout": RECIPE["modality_dropout"], **extra}
    return MultimodalModel(mods, target, model={"fusion": {"name": fusion}, "head_hidden": RECIPE["head_hidden"], "dropout": RECIPE["dropout"]}, train=train, task=task)


def part_a(data_dir: str, seeds: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    ds = load_dataset("handwritten", data_dir=data_dir)
    views = [m.name for m in ds.modalities]
    rows, subsets = [], []
    for method in METHODS:
        for seed in seeds:
            train, val = train_test_split(ds.train, test_size=0.1, random_state=seed, stratify=ds.train[ds.target])
            model = model_for(ds.modalities, ds.target, method, seed)
            t0 = time.perf_counter()
            model.fit(train, val=val)
            test = model.featurize(ds.test)
            clean = model.evaluate(test)
            row = {"method": method, "seed": seed, "accuracy": clean["accuracy"], "ece": clean["ece"], "train_s": time.perf_counter() - t0}
            for v in views:
                row[f"without {v}"] = model.evaluate(test, masks={v: False})["accuracy"]
            row.update({f"conflict {k}": v for k, v in conflict_report(model, test, seed).items() if k != "clean"})
            if method in ("concat", "late"):
                model.calibrate(val)
                row["ece after T"] = model.evaluate(test)["ece"]
                row["temperature"] = model.temperature
            rows.append(row)
            subsets.append(subset_accuracy(model, test).assign(method=method, seed=seed))
            print(f"A {method} seed {seed}: {row['accuracy']:.4f}", flush=True)
    return pd.DataFrame(rows), pd.concat(subsets)


def synthetic_regression(n: int, seed: int, w: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows of (steady view, noisy view, y = z·w + ε) and each row's noise level σᵢ of the noisy view."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, LATENT)).astype(np.float32)
    sigma = rng.uniform(0, 2, size=n)
    frame = pd.DataFrame({
        "steady": list((z + 0.5 * rng.normal(size=z.shape)).astype(np.float32)),
        "noisy": list((z + sigma[:, None] * rng.normal(size=z.shape)).astype(np.float32)),
        "y": z @ w + 0.1 * rng.normal(size=n),
    })
    return frame, sigma


def part_b(seeds: list[int]) -> pd.DataFrame:
    rows = []
    mods = [ModalityConfig(name="steady", kind="vector"), ModalityConfig(name="noisy", kind="vector")]
    for seed in seeds:
        w = np.random.default_rng(seed).normal(size=LATENT) / np.sqrt(LATENT / 8)
        train, _ = synthetic_regression(4000, seed + 1, w)
        test, sigma = synthetic_regression(1000, seed + 1000, w)
        model = model_for(mods, "y", "inverse_variance", seed, task="regression", modality_dropout=0.0, max_epochs=60, val_fraction=0.1)
        model.fit(train)
        frame = model.predict_frame(test, mc_samples=20)
        features = model.featurize(test)
        with torch.no_grad():
            model.net.eval()
            aux = model.net(features[list(range(len(features)))]).aux
        branch_mean = torch.stack([aux[m][:, 0] for m in ("steady", "noisy")]).mean(0).numpy()
        y = test["y"].to_numpy()
        rows.append({
            "seed": seed,
            "spearman(sigma, weight noisy)": spearmanr(sigma, frame["weight_noisy"]).statistic,
            "MSE inverse-variance (MC 20)": float(np.mean((frame["prediction"].to_numpy(dtype=float) - y) ** 2)),
            "MSE mean of branches": float(np.mean((branch_mean - y) ** 2)),
            "MSE steady branch": float(np.mean((aux["steady"][:, 0].numpy() - y) ** 2)),
            "MSE noisy branch": float(np.mean((aux["noisy"][:, 0].numpy() - y) ** 2)),
        })
        print(f"B seed {seed}: {rows[-1]}", flush=True)
    return pd.DataFrame(rows)


def mean_std(frame: pd.DataFrame, by: str | None) -> pd.DataFrame:
    cols = [c for c in frame.columns if c not in ("method", "seed") and pd.api.types.is_numeric_dtype(frame[c])]
    groups = frame.groupby(by, sort=False) if by else [("all", frame)]
    out = []
    for key, g in groups:
        row = {by or "": key}
        row.update({c: f"{g[c].mean():.4f} ± {g[c].std(ddof=1) if len(g) > 1 else 0:.4f}" for c in cols if g[c].notna().any()})
        out.append(row)
    return pd.DataFrame(out)


def arguments(description: str) -> argparse.Namespace:
    """--seeds, --data-dir and --output, shared with bench/conflict.py."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--output", default=str(REPO / "docs" / "results"))
    return parser.parse_args()


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    seeds = list(range(args.seeds))
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    a, subsets = part_a(args.data_dir, seeds)
    b = part_b(seeds)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    a.to_csv(out / "uncertainty_handwritten.csv", index=False)
    subsets.to_csv(out / "uncertainty_subsets.csv", index=False)
    b.to_csv(out / "uncertainty_regression.csv", index=False)
    a_sum = mean_std(a, "method")
    views = [c for c in a.columns if c.startswith("without ")]
    drop = a.assign(**{"worst drop (points)": 100 * (a["accuracy"] - a[views].min(axis=1))})
    drop_sum = drop.groupby("method", sort=False)["worst drop (points)"].agg(["mean", "max"]).round(2).reset_index()
    sub_table = subsets.groupby(["method", "modalities"], sort=False)["accuracy"].mean().unstack(0).round(4)
    sub_table = sub_table.loc[subsets.drop_duplicates("modalities")["modalities"]].reset_index()
    text = "\n".join([
        "# Uncertainty, missing views, conflict and calibration", "",
        f"- date: {started}", f"- machine: {machine_info()}", f"- command: `python bench/uncertainty.py --seeds {args.seeds}`",
        f"- seeds: {seeds}; recipe: {RECIPE} (10 % of train held out per seed for best-epoch selection and temperature scaling)", "",
        "## Handwritten 6-view (TMC split): accuracy, each view missing, conflict protocol, ECE (mean ± std over seeds)", "",
        markdown_table(a_sum), "",
        "Worst single-view-missing drop per seed, in accuracy points (mean and max over seeds):", "", markdown_table(drop_sum), "",
        "## All 63 view subsets (mean accuracy over seeds; the other views missing)", "", markdown_table(sub_table), "",
        "## Regression with per-sample noise on one view (synthetic, generated by this script)", "", markdown_table(mean_std(b, None)), "",
    ])
    (out / "uncertainty.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
