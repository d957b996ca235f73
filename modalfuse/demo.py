"""The offline demo: digit images + keypad-tone audio, each corrupted for some samples; fusion wins."""
from __future__ import annotations

import time
from pathlib import Path

from .api import MultimodalModel
from .config import Config, DataConfig, ModelConfig, TrainConfig


def run_demo(run_root: str | Path = "runs", seed: int = 0, epochs: int = 12) -> dict[str, dict[str, float]]:
    """Train image-only, audio-only and fused models; print accuracy overall and per corruption group."""
    from .api import write_config
    from .datasets import make_demo_data

    start = time.perf_counter()
    run = Path(run_root) / f"{time.strftime('%Y%m%d-%H%M%S')}-demo"
    print("modalfuse demo: scikit-learn's handwritten digit images + synthetic keypad-tone (DTMF) audio of the same digit.")
    print("About a third of the samples have a ruined image, another third ruined audio; fusion has to use whichever is intact.")
    data = make_demo_data(run / "data", seed=seed)
    print(f"data: {len(data.train)} train / {len(data.test)} test samples written to {run / 'data'}")
    small = {"image": {"widths": [16, 32, 64]}, "audio": {"widths": [16, 32, 64], "n_mels": 32, "hop_ms": 20.0}}
    modalities = [m.model_copy(update={"encoder": m.encoder.model_copy(update={"dim": 64, "options": small[m.name]})}) for m in data.modalities]
    train_cfg = TrainConfig(max_epochs=epochs, batch_size=64, lr=3e-3, patience=5, seed=seed, progress=False)
    groups = {g: (data.test["corrupted"] == g).to_numpy() for g in ("none", "image", "audio")}
    results: dict[str, dict[str, float]] = {}
    for label, mods, fusion in (
        ("image only", [m for m in modalities if m.name == "image"], "concat"),
        ("audio only", [m for m in modalities if m.name == "audio"], "concat"),
        ("fused (concat)", modalities, "concat"),
        ("fused (late)", modalities, "late"),
    ):
        model = MultimodalModel(mods, data.target, ModelConfig(fusion={"name": fusion}), train_cfg)
        folder = run / label.replace(" ", "_").replace("(", "").replace(")", "")
        t0 = time.perf_counter()
        model.fit(data.train, run_dir=folder)
        pred = model.predict(data.test)
        correct = pred.astype(int) == data.test[data.target].to_numpy()
        results[label] = {"all": correct.mean(), **{g: correct[mask].mean() for g, mask in groups.items()}, "seconds": time.perf_counter() - t0}
        model.save(folder / "model")
        cfg = Config(data=DataConfig(train=str(run / "data" / "demo.csv"), target=data.target), modalities=mods, model=model.model_config, train=train_cfg)
        write_config(cfg, folder / "config.yaml")
        print(f"  trained {label:15s} in {results[label]['seconds']:5.1f} s")
    print()
    print(f"test accuracy (n={len(data.test)}; columns: all samples, clean, image ruined, audio ruined)")
    print(f"{'model':16s} {'all':>7s} {'clean':>7s} {'img bad':>8s} {'aud bad':>8s}")
    for label, r in results.items():
        print(f"{label:16s} {r['all']:7.1%} {r['none']:7.1%} {r['image']:8.1%} {r['audio']:8.1%}")
    print()
    print(f"run folder: {run.resolve()}  ({time.perf_counter() - start:.0f} s in all)")
    return results

