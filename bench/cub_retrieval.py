"""Benchmark: image ↔ text retrieval on CUB features (600 birds, 10 classes), random stratified 80/20 splits.

An AlignedModel (an MLP encoder and a linear projection per modality into a 32-d unit sphere) is trained with
symmetric InfoNCE; "supervised" moves 80 % of each row's contrastive target onto the same-class items of the
other modality (label_weight 0.8). Recall@1/5/10 and median rank are reported both ways, per instance (the
paired item is the hit) and per class (any same-class item is a hit), over the 120 test pairs of each seed.
Aids on top of the supervised model: an ensemble of 5 models (concatenated embeddings), score fusion with the
PCA + CCA space and with semantic matching (class posteriors of a logistic regression per modality fitted on
the training rows, ``modalfuse.align.SemanticMatching``; ``ensemble_embeddings`` with weights), and
gallery-side neighbour re-ranking (``neighbour_rerank``). No aid uses test labels. Recipe and aids were chosen
on a validation split carved from the training rows of seeds 0-2 (never on test; ``bench/select_cub_retrieval.py``).

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
#: test-time aids on the supervised model, chosen on validation (see NOTES): ensemble size, fusion weights
#: (supervised : PCA + CCA cosine), neighbour re-ranking (k gallery neighbours, blend weight)
AIDS = {"ensemble": 5, "fusion_weights": [2, 1], "rerank": {"k": 5, "weight": 0.3}, "rerank_alone": {"k": 5, "weight": 0.5},
        "semantic": {"C": {"image": 0.1, "text": 1.0}, "whiten": ["text"], "weights": [2, 1, 1]}}


def make_model(label_weight: float, seed: int, epochs: int):
    from modalfuse.align import AlignedModel

    mods = [{"name": n, "kind": "vector", "encoder": RECIPE["encoder"]} for n in ("image", "text")]
    train = {**RECIPE["train"], "max_epochs": epochs, "seed": seed, "progress": False, "threads": 1}
    return AlignedModel(mods, label="label", align={**RECIPE["align"], "label_weight": label_weight}, train=train)


def pca_cca(train, test, pca: int, cca: int):
    """The classical baseline: standardise, PCA per modality, CCA between them; test embeddings (image, text) in the CCA space."""
    import numpy as np
    from sklearn.cross_decomposition import CCA
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    views = {}
    for name in ("image", "text"):
        reduce = make_pipeline(StandardScaler(), PCA(pca, random_state=0)).fit(np.stack(train[name]))
        views[name] = (reduce.transform(np.stack(train[name])), reduce.transform(np.stack(test[name])))
    model = CCA(cca, max_iter=1000).fit(views["image"][0], views["text"][0])
    return model.transform(views["image"][1], views["text"][1])


def semantic_matching(train, test, options: dict):
    """Semantic-matching test embeddings (image, text): √ class posteriors of per-modality logistic regressions."""
    import numpy as np

    from modalfuse.align import SemanticMatching

    sm = SemanticMatching(C=options["C"], whiten=options["whiten"])
    sm.fit({n: np.stack(train[n]) for n in ("image", "text")}, train["label"].to_numpy())
    return sm.embed(np.stack(test["image"]), "image"), sm.embed(np.stack(test["text"]), "text")


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], DATASET, default_threads=1)
    from modalfuse.datasets import load_dataset

    epochs = 3 if args.quick else RECIPE["train"]["max_epochs"]
    metrics = [Metric(f"{d}/{p}R@{k}", f"{d} {'class ' if p else ''}R@{k} %") for p in ("", "class_") for d in ("image→text", "text→image") for k in (1, 5, 10)]
    metrics += [Metric(f"{d}/median_rank", f"{d} median rank", percent=False, digits=1) for d in ("image→text", "text→image")]
    bench = Benchmark(DATASET, "CUB image ↔ text retrieval (120 test pairs per seed)", args, metrics, notes=NOTES)
    bench.hyper = {"recipe": RECIPE, "rows (label_weight)": ROWS, "PCA + CCA baseline (fixed, not tuned)": BASELINE,
                   "test-time aids on the supervised model": AIDS}
    from modalfuse.evaluate.retrieval import cross_modal_metrics, ensemble_embeddings

    baseline = f"PCA {BASELINE['pca']} + CCA {BASELINE['cca']} (baseline)"
    k, w = AIDS["rerank"]["k"], AIDS["rerank"]["weight"]
    n_models = 2 if args.quick else AIDS["ensemble"]
    fused = f"supervised + PCA/CCA score fusion (weights {AIDS['fusion_weights'][0]}:{AIDS['fusion_weights'][1]})"
    for seed in bench.seeds:
        ds = load_dataset("cub", data_dir=args.data_dir, download=False, seed=seed)
        labels = ds.test["label"].to_numpy()
        t0 = time.perf_counter()
        cca = pca_cca(ds.train, ds.test, BASELINE["pca"], BASELINE["cca"])
        cca_seconds = time.perf_counter() - t0
        results = {baseline: (cross_modal_metrics(*cca, labels, ("image", "text")), cca_seconds, None)}
        supervised = []  # (image, text) test embeddings of each ensemble member, member 0 = the plain supervised row
        for label, weight in ROWS.items():
            for member in range(n_models if weight > 0 else 1):
                model = make_model(weight, seed + 1000 * member, epochs)
                t0 = time.perf_counter()
                model.fit(ds.train)
                emb = (model.embed(ds.test, "image"), model.embed(ds.test, "text"))
                seconds = time.perf_counter() - t0
                if member == 0:
                    results[label] = (cross_modal_metrics(*emb, labels, ("image", "text")), seconds, model.history["epochs"])
                if weight > 0:
                    supervised.append((emb, seconds))
        one = supervised[0][0]
        fit_seconds = supervised[0][1]
        rerank_alone = AIDS["rerank_alone"]
        results[f"supervised + neighbour re-rank (k {rerank_alone['k']}, weight {rerank_alone['weight']})"] = (
            cross_modal_metrics(*one, labels, ("image", "text"), rerank_k=rerank_alone["k"], rerank_weight=rerank_alone["weight"]), fit_seconds, None)
        ensemble = [ensemble_embeddings([e[i] for e, _ in supervised]) for i in (0, 1)]
        results[f"supervised, ensemble of {n_models} models"] = (
            cross_modal_metrics(*ensemble, labels, ("image", "text")), sum(t for _, t in supervised), None)
        fusion = [ensemble_embeddings([one[i], cca[i]], AIDS["fusion_weights"]) for i in (0, 1)]
        results[fused] = (cross_modal_metrics(*fusion, labels, ("image", "text")), fit_seconds + cca_seconds, None)
        results[f"{fused} + neighbour re-rank (k {k}, weight {w})"] = (
            cross_modal_metrics(*fusion, labels, ("image", "text"), rerank_k=k, rerank_weight=w), fit_seconds + cca_seconds, None)
        t0 = time.perf_counter()
        semantic = semantic_matching(ds.train, ds.test, AIDS["semantic"])
        sm_seconds = time.perf_counter() - t0
        results["semantic matching alone"] = (cross_modal_metrics(*semantic, labels, ("image", "text")), sm_seconds, None)
        three = [ensemble_embeddings([one[i], cca[i], semantic[i]], AIDS["semantic"]["weights"]) for i in (0, 1)]
        scm = f"supervised + PCA/CCA + semantic matching score fusion (weights {':'.join(map(str, AIDS['semantic']['weights']))})"
        results[scm] = (cross_modal_metrics(*three, labels, ("image", "text")), fit_seconds + cca_seconds + sm_seconds, None)
        results[f"{scm} + neighbour re-rank (k {k}, weight {w}) — selected"] = (
            cross_modal_metrics(*three, labels, ("image", "text"), rerank_k=k, rerank_weight=w), fit_seconds + cca_seconds + sm_seconds, None)
        for label, (result, seconds, n_epochs) in results.items():
            if bench.wanted(label):
                bench.rows.setdefault(label, Row(label)).add(result, seconds, n_epochs)
                shown = "  ".join(f"{key}={result[key]:.3f}" for key in ("image→text/R@5", "text→image/R@5", "image→text/class_R@1", "text→image/class_R@1"))
                print(f"  [{label}] seed {seed}: {shown}  ({seconds:.1f} s)", flush=True)
    bench.finish()


NOTES = """
The PCA + CCA row is this script's own run of the classical baseline (standardise, PCA to 50 per modality,
CCA with 10 components, cosine retrieval; settings fixed beforehand, not tuned). Baseline measured by the issue
author with PCA + CCA on the same kind of split: instance Recall@1 7.7 %,
Recall@5 32.8 %; class-level Recall@1 63.8 % image→text, 57.7 % text→image. Goal: class-level Recall@1
≥ 75 % both ways and instance Recall@5 ≥ 45 %.

Class-level Recall@1 text→image is close to nearest-neighbour classification of a text across modalities, so
the text side bounds it: on the 5 test splits logistic regression on the standardised text features alone
scores 73.7-74.0 % (C 1 / 0.1), and 78.0 % on Ledoit-Wolf-whitened text features (C 0.01); image features
88-92 %. Semantic matching carries that whitened-text classifier into retrieval.

Rows below the supervised one add test-time aids to it; none uses test labels. "ensemble of 5": five supervised
models (seeds s, s+1000, ...), embeddings concatenated (`ensemble_embeddings`, similarity = mean of the five).
"score fusion": the supervised embedding and the PCA + CCA embedding concatenated with weights 2:1, i.e.
similarity = 2/3 supervised cosine + 1/3 CCA cosine. "neighbour re-rank": each gallery item's score is blended
with the query's mean score over that item's k nearest gallery neighbours (`neighbour_rerank`). "semantic
matching" (Rasiwasia et al. 2010): each item becomes √p(class | item) from a logistic regression on its own
modality (image: standardised, C 0.1; text: Ledoit-Wolf whitened, C 1), fitted on the training rows; the cosine
of two such vectors is the Bhattacharyya coefficient of their class posteriors. Fused with weights 2:1:1, the
similarity is 1/2 supervised + 1/4 CCA + 1/4 semantic. The row marked "selected" was chosen on validation
before any test run; the others are ablations.
"""

if __name__ == "__main__":
    main()
