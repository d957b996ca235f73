"""Can a text prior place a digit the encoders never saw? Zero-shot on development digits, seen digits only.

The held-out digits 2, 5, 8 of bench/digits_zero_shot.py stay untouched. Here, three of the seven seen digits
at a time (a "dev triple") are also left out of alignment training, so the model trains on four digits and is
asked to tell the three dev digits apart (3-way, chance 33.3 %) from text alone, with the same recipe and
descriptions as bench/digits_zero_shot.py. Priors compared, for audio and image queries:

- text: the embedded description of each dev digit (the zero-shot prototype used there);
- ConSE (shared): a mixture of the four training digits' class means, weighted by softmax(cos/0.05) between
  the dev digit's embedded description and theirs (Norouzi et al. 2014, convex combination of seen classes);
- ConSE (MiniLM): the same mixture weighted by the frozen MiniLM similarity of the descriptions;
- for scale: 1-shot data-only prototypes (200 episodes) and the mean of all the dev digit's training rows.

    .venv/bin/python bench/zero_shot_dev.py     # writes docs/results/digits_zero_shot_dev.md
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_DIR, command_line, default_data_dir, machine_info, mean_std, publish  # noqa: E402

import numpy as np  # noqa: E402

import digits_zero_shot as dz  # noqa: E402

TRIPLES = [(0, 3, 9), (3, 6, 7), (1, 4, 7)]
SEEDS = [0, 1, 2]
TEMPERATURE = 0.05
PRIORS = ["text", "ConSE (shared)", "ConSE (MiniLM)", "1-shot data", "all training rows"]


def softmax(s: np.ndarray) -> np.ndarray:
    z = np.exp((s - s.max(axis=1, keepdims=True)) / TEMPERATURE)
    return z / z.sum(axis=1, keepdims=True)


def evaluate(model, seen, dev, train, dev_train, dev_test, modality, seed) -> dict[str, float]:
    from modalfuse.align import class_means, nearest_prototype

    dev = np.array(dev)
    texts = dz.DESCRIPTIONS
    _, seen_text = model.prototypes({d: texts[d] for d in seen}, "text")
    _, dev_text = model.prototypes({d: texts[d] for d in dev}, "text")
    frozen = model.frozen_features(texts, "text")
    frozen = frozen / np.linalg.norm(frozen, axis=1, keepdims=True)
    means = class_means(model.embed(train, modality), train["label"].to_numpy(), np.array(seen))
    support, support_labels = model.embed(dev_train, modality), dev_train["label"].to_numpy()
    query, truth = model.embed(dev_test, modality), dev_test["label"].to_numpy()

    def accuracy(protos: np.ndarray) -> float:
        return float(np.mean(dev[nearest_prototype(query, protos)] == truth))

    rng = np.random.default_rng(seed)
    one_shot = [accuracy(np.stack([support[rng.choice(np.flatnonzero(support_labels == c))] for c in dev])) for _ in range(200)]
    return {
        "text": accuracy(dev_text),
        "ConSE (shared)": accuracy(softmax(dev_text @ seen_text.T) @ means),
        "ConSE (MiniLM)": accuracy(softmax(frozen[dev] @ frozen[list(seen)].T) @ means),
        "1-shot data": float(np.mean(one_shot)),
        "all training rows": accuracy(class_means(support, support_labels, dev)),
    }


def main() -> None:
    import torch

    from modalfuse.datasets import load_dataset

    torch.set_num_threads(1)
    start = time.perf_counter()
    ds = load_dataset("spoken_digits", data_dir=default_data_dir(), download=False, seed=dz.RECIPE["dataset pairing seed"])
    results: dict[tuple, list[float]] = {}
    for dev in TRIPLES:
        excluded = set(dz.HELD_OUT) | set(dev)
        seen = sorted(set(range(10)) - excluded)
        train = ds.train[~ds.train["label"].isin(excluded)].copy()
        train["text"] = train["label"].map(dz.DESCRIPTIONS)
        dev_train, dev_test = ds.train[ds.train["label"].isin(dev)], ds.test[ds.test["label"].isin(dev)]
        for seed in SEEDS:
            model = dz.make_model(ds.modalities, seed, dz.RECIPE["train"]["max_epochs"])
            model.fit(train)
            for modality in ("audio", "image"):
                for prior, acc in evaluate(model, seen, dev, train, dev_train, dev_test, modality, seed).items():
                    results.setdefault((dev, modality, prior), []).append(acc)
            print(f"dev {dev} seed {seed}: " + "  ".join(f"{m} text={results[(dev, m, 'text')][-1]:.2f}" for m in ("audio", "image")), flush=True)
    info = machine_info(1)
    lines = [
        "# Zero-shot on development digits (seen digits only; 2, 5, 8 untouched)", "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {info['cores']} cores, {info['cpu']}; torch {info['torch']}, 1 thread",
        f"- command: `{command_line()}`",
        f"- seeds: {SEEDS} (model init, batch order); dev triples {TRIPLES}; total wall time {(time.perf_counter() - start) / 60:.1f} min", "",
        "3-way accuracy % on the dev digits' test rows (chance 33.3), mean ± std over the seeds; the model trained on the other",
        "four seen digits with the recipe and descriptions of `bench/digits_zero_shot.py`.", "",
        "| dev digits | query | " + " | ".join(PRIORS) + " |", "|---|---|" + "---:|" * len(PRIORS),
    ]
    for dev in TRIPLES:
        for modality in ("audio", "image"):
            lines.append(f"| {', '.join(map(str, dev))} | {modality} | " + " | ".join(mean_std(results[(dev, modality, p)], percent=True, digits=1) for p in PRIORS) + " |")
    for modality in ("audio", "image"):
        lines.append(f"| all | {modality} | " + " | ".join(
            mean_std([v for dev in TRIPLES for v in results[(dev, modality, p)]], percent=True, digits=1) for p in PRIORS) + " |")
    publish(lines, str(RESULTS_DIR / "digits_zero_shot_dev.md"))


if __name__ == "__main__":
    main()
