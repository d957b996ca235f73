"""Benchmark: image ↔ text retrieval on CUB features (600 birds, 10 classes), random stratified 80/20 splits.

An AlignedModel (an MLP encoder and a linear projection per modality into a 32-d unit sphere) is trained with
symmetric InfoNCE; "supervised" moves 80 % of each row's contrastive target onto the same-class items of the
other modality (label_weight 0.8). Recall@1/5/10 and median rank are reported both ways, per instance (the
paired item is the hit) and per class (any same-class item is a hit), over the 120 test pairs of each seed.
The recipe was chosen on a validation split carved from the training rows of seeds 0-2 (never on test).

    .venv/bin/python bench/cub_retrieval.py            # 5 seeds, writes docs/results/cub_retrieval.md
    .venv/bin/python bench/cub_retrieval.py --quick    # smoke test
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Benchmark, Metric, Row, parse_args  # noqa: E402  (sets the environment first)

DATASET = "cub_retrieval"

RECIPE: dict = {
    "encoder": {"dim": 256, "options": {"hidden": [256], "dropout": 0.5}},
    "align": {"dim": 32, "temperature": 0.1, "min_temperature": 0.01, "max_temperature": 1.0, "learn_temperature": True},
    "train": {"max_epochs": 60, "batch_size": 64, "lr": 1e-3, "weight_decay": 1e-2, "patience": 10, "val_fraction": 0.1},
}
ROWS = {"InfoNCE (pairs only)": 0.0, "supervised (label_weight 0.8)": 0.8}
BASELINE = {"pca": 50, "cca": 10}


def make_model(label_weight: float, seed: int, epochs: int):
    from modalfuse.align import AlignedModel

    mods = [{"name": n, "kind": "vector", "encoder": RECIPE["encoder"]} for n in ("image", "text")]
    train = {**RECIPE["train"], "max_epochs": epochs, "seed": seed, "progress": False, "threads": 1}
    return AlignedModel(mods, label="label", align={**RECIPE["align"], "label_weight": label_weight}, train=train)


def pca_cca(train, test, pca: int, cca: int) -> dict[str, float]:
    """The classical baseline: standardise, PCA per modality, CCA between them, cosine retrieval in the CCA space."""
    import numpy as np
    from sklearn.cross_decomposition import CCA
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from modalfuse.evaluate.retrieval import cross_modal_metrics

    views = {}
    for name in ("image", "text"):
        reduce = make_pipeline(StandardScaler(), PCA(pca, random_state=0)).fit(np.stack(train[name]))
        views[name] = (reduce.transform(np.stack(train[name])), reduce.transform(np.stack(test[name])))
    model = CCA(cca, max_iter=1000).fit(views["image"][0], views["text"][0])
    image, text = model.transform(views["image"][1], views["text"][1])
    return cross_modal_metrics(image, text, test["label"].to_numpy(), ("image", "text"))


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], DATASET, default_threads=1)
    from modalfuse.datasets import load_dataset

    epochs = 3 if args.quick else RECIPE["train"]["max_epochs"]
    metrics = [Metric(f"{d}/{p}R@{k}", f"{d} {'class ' if p else ''}R@{k} %") for p in ("", "class_") for d in ("image→text", "text→image") for k in (1, 5, 10)]
    metrics += [Metric(f"{d}/median_rank", f"{d} median rank", percent=False, digits=1) for d in ("image→text", "text→image")]
    bench = Benchmark(DATASET, "CUB image ↔ text retrieval (120 test pairs per seed)", args, metrics, notes=NOTES)
    bench.hyper = {"recipe": RECIPE, "rows (label_weight)": ROWS, "PCA + CCA baseline (fixed, not tuned)": BASELINE}
    label = f"PCA {BASELINE['pca']} + CCA {BASELINE['cca']} (baseline)"
    for seed in bench.seeds if bench.wanted(label) else []:
        ds = load_dataset("cub", data_dir=args.data_dir, download=False, seed=seed)
        t0 = time.perf_counter()
        result = pca_cca(ds.train, ds.test, BASELINE["pca"], BASELINE["cca"])
        bench.rows.setdefault(label, Row(label)).add(result, time.perf_counter() - t0, None)
    for label, weight in ROWS.items():
        if not bench.wanted(label):
            continue
        for seed in bench.seeds:
            ds = load_dataset("cub", data_dir=args.data_dir, download=False, seed=seed)
            model = make_model(weight, seed, epochs)
            t0 = time.perf_counter()
            model.fit(ds.train)
            result = model.evaluate(ds.test)
            seconds = time.perf_counter() - t0
            bench.rows.setdefault(label, Row(label)).add(result, seconds, model.history["epochs"])
            shown = "  ".join(f"{k}={result[k]:.3f}" for k in ("image→text/R@1", "image→text/R@5", "image→text/class_R@1", "text→image/class_R@1"))
            print(f"  [{label}] seed {seed}: {shown}  ({seconds:.1f} s)", flush=True)
    bench.finish()


NOTES = """
The PCA + CCA row is this script's own run of the classical baseline (standardise, PCA to 50 per modality,
CCA with 10 components, cosine retrieval; settings fixed beforehand, not tuned). Baseline measured by the issue
author with PCA + CCA on the same kind of split: instance Recall@1 7.7 %,
Recall@5 32.8 %; class-level Recall@1 63.8 % image→text, 57.7 % text→image. Goal: class-level Recall@1
≥ 75 % both ways and instance Recall@5 ≥ 45 %.

Class-level Recall@1 text→image is close to nearest-neighbour classification of a text across modalities;
logistic regression on the text features alone reaches 69-78 % test accuracy on seeds 0-2 (and 88-92 % on
the image features), so the text side bounds what any alignment can reach there.
"""

if __name__ == "__main__":
    main()
