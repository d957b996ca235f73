"""Benchmark: modality balance on spoken + written digits, where the image dominates the audio.

Rows: concat fusion plain, with OGM-GE gradient modulation, with per-modality auxiliary losses, and with both.
Besides the fused test accuracy, each fitted model's encoders are frozen and probed: a logistic regression per
modality on its embeddings, fitted on the training rows and scored on the test rows (modalfuse.evaluate.probes).
"audio via fused model" is the fused model's own test accuracy with the image switched off (masked as missing).
Recipe: the one of bench/spoken_digits.py (so the plain row repeats its "fused concat" row).

    .venv/bin/python bench/modality_balance.py            # 5 seeds → docs/results/modality_balance.md
    .venv/bin/python bench/modality_balance.py --quick    # smoke test
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Benchmark, Metric, parse_args, with_encoder  # noqa: E402  (sets the environment first)
from spoken_digits import RECIPE  # noqa: E402

DATASET = "spoken_digits"
OGM = {"alpha": 0.8, "noise": True}
AUX_WEIGHT = 1.0


def make_model(modalities, target, recipe, seed, gradient_modulation, modality_aux_weight):
    from modalfuse.api import MultimodalModel
    from modalfuse.config import ModelConfig, TrainConfig

    mods = [with_encoder(m, recipe[f"{m.name}_encoder"]["dim"], recipe[f"{m.name}_encoder"]["options"]) for m in modalities]
    model_cfg = ModelConfig(fusion={"name": "concat", "dim": recipe["fusion_dim"]}, head_hidden=recipe["head_hidden"], dropout=recipe["dropout"])
    train_cfg = TrainConfig(
        max_epochs=recipe["max_epochs"], batch_size=recipe["batch_size"], lr=recipe["lr"], weight_decay=recipe["weight_decay"],
        patience=recipe["patience"], val_fraction=recipe["val_fraction"], seed=seed, progress=False,
        gradient_modulation=gradient_modulation, modality_aux_weight=modality_aux_weight,
    )
    return MultimodalModel(mods, target, model_cfg, train_cfg, task="classification")


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], "modality_balance", default_threads=1)
    from modalfuse.datasets import load_dataset
    from modalfuse.evaluate.probes import modality_probes

    recipe = dict(RECIPE)
    if args.quick:
        recipe["max_epochs"] = 2
    ds = load_dataset(DATASET, data_dir=args.data_dir, download=False, seed=recipe["dataset pairing seed"])
    names = [m.name for m in ds.modalities]
    metrics = [Metric("accuracy", "fused accuracy %"), Metric("log_loss", "log loss", percent=False, digits=3)]
    metrics += [Metric(f"probe_{m}", f"{m} probe %") for m in names]
    metrics += [Metric("audio_via_fused", "audio via fused model %")]
    bench = Benchmark(DATASET, f"Modality balance on spoken_digits (FSDD audio + optdigits image, {len(ds.train)}/{len(ds.test)})", args, metrics, notes=NOTES)
    bench.hyper = {"recipe (all rows)": recipe, "fusion": "concat", "gradient_modulation": OGM, "modality_aux_weight": AUX_WEIGHT,
                   "probe": "StandardScaler + LogisticRegression(C=1, max_iter=2000) per modality on the frozen embeddings, train rows → test rows"}

    def evaluate(model, test):
        result = model.evaluate(test)
        result.update({f"probe_{m}": acc for m, acc in modality_probes(model, ds.train, test).items()})
        result["audio_via_fused"] = model.evaluate(test, masks={"image": False})["accuracy"]
        return result

    plans = [("concat", None, 0.0), (f"concat + OGM-GE α={OGM['alpha']}", OGM, 0.0),
             (f"concat + aux losses ×{AUX_WEIGHT}", None, AUX_WEIGHT), ("concat + OGM-GE + aux losses", OGM, AUX_WEIGHT)]
    seeds = list(bench.seeds)
    for i, seed in enumerate(seeds):  # seed by seed, all rows, the file rewritten after each: a cut-short run keeps its seeds
        for label, gm, aux in plans:
            if bench.wanted(label):
                bench.run(label, seed, lambda s: make_model(ds.modalities, ds.target, recipe, s, gm, aux), ds.train, ds.test, evaluate)
        bench.seeds = seeds[: i + 1]
        bench.finish()


NOTES = """
OGM-GE follows Peng et al. (CVPR 2022): each step scores each modality by the mean probability of the true class
that the model gives from that modality alone (the other masked out as missing, through the same fusion and head),
ρ = s_audio / s_image and its inverse; the dominant modality's encoder gradients are multiplied by
1 − tanh(α·(ρ − 1)) and get Gaussian noise with each gradient tensor's standard deviation. α = 0.8 and the
aux weight 1.0 were fixed before running, not tuned. The optimizer is the library's AdamW: Adam divides each
gradient by a running estimate of its own scale, so a coefficient that stays about constant for many steps is
largely normalised away (the paper used SGD); the noise term is not. Aux losses: a linear classifier per modality
on its encoder's embedding, its cross-entropy added with weight 1.0 (training only; not in the saved model).
The probe and the "audio via fused model" column measure the same thing two ways: how much the audio
encoder learnt on its own. Pairing of recordings and images as in `bench/spoken_digits.py` (dataset option seed=0).
"""

if __name__ == "__main__":
    main()
