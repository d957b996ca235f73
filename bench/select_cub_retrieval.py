"""Choose the semantic-matching aid of bench/cub_retrieval.py on validation rows only (the test split is never read).

For split seeds 0-2, 20 % of the training rows (stratified) become the validation gallery; the supervised model,
PCA + CCA and semantic matching are fitted on the other 80 %. Each setting of the semantic aid (text whitened or
standardised, the text regression's C, its fusion weight next to supervised 2 : CCA 1, neighbour re-ranking on or
off) is scored by the mean of image→text R@5, text→image R@5 and class-level R@1 both ways, averaged over the seeds.

    .venv/bin/python bench/select_cub_retrieval.py
"""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import default_data_dir  # noqa: E402  (sets the environment first)

import numpy as np  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import cub_retrieval as cr  # noqa: E402

KEYS = ("image→text/R@5", "text→image/R@5", "image→text/class_R@1", "text→image/class_R@1")


def main() -> None:
    import torch

    from modalfuse.datasets import load_dataset
    from modalfuse.evaluate.retrieval import cross_modal_metrics, ensemble_embeddings

    torch.set_num_threads(1)
    k, w = cr.AIDS["rerank"]["k"], cr.AIDS["rerank"]["weight"]
    scores: dict[str, list[list[float]]] = {}
    for seed in (0, 1, 2):
        ds = load_dataset("cub", data_dir=default_data_dir(), download=False, seed=seed)
        fit, val = train_test_split(ds.train, test_size=0.2, random_state=seed, stratify=ds.train["label"])
        labels = val["label"].to_numpy()
        model = cr.make_model(0.8, seed, cr.RECIPE["train"]["max_epochs"]).fit(fit)
        supervised = (model.embed(val, "image"), model.embed(val, "text"))
        cca = cr.pca_cca(fit, val, cr.BASELINE["pca"], cr.BASELINE["cca"])
        settings = {"supervised + CCA 2:1 (no semantic matching)": ([supervised, cca], [2, 1])}
        for whiten, c in itertools.product((False, True), (0.01, 0.1, 1.0)):
            semantic = cr.semantic_matching(fit, val, {"C": {"image": 0.1, "text": c}, "whiten": ["text"] if whiten else []})
            for weight in (0.5, 1, 2, 4):
                settings[f"text {'whitened' if whiten else 'standardised'}, C {c}, weights 2:1:{weight}"] = ([supervised, cca, semantic], [2, 1, weight])
        for name, (parts, weights) in settings.items():
            joint = [ensemble_embeddings([p[i] for p in parts], weights) for i in (0, 1)]
            for rerank in (False, True):
                r = cross_modal_metrics(*joint, labels, ("image", "text"), **({"rerank_k": k, "rerank_weight": w} if rerank else {}))
                scores.setdefault(name + (f", re-rank k {k} w {w}" if rerank else ""), []).append([100 * r[key] for key in KEYS])
        print(f"seed {seed} done", flush=True)
    print("\n| setting | i→t R@5 | t→i R@5 | i→t class R@1 | t→i class R@1 | mean |\n|---|---:|---:|---:|---:|---:|")
    for name, values in sorted(scores.items(), key=lambda kv: -np.mean(kv[1])):
        m = np.mean(values, axis=0)
        print(f"| {name} | " + " | ".join(f"{x:.1f}" for x in m) + f" | {m.mean():.1f} |")


if __name__ == "__main__":
    main()
