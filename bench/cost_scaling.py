"""Cost of each fusion method vs the number of modalities (handwritten views 2..6).

Per-step training time (forward + backward + AdamW step, batch 64, median of 30 steps) and
parameter count of the whole model, as a table and a plot in docs/results/. Everything but
`tensor` should grow about linearly with the number of modalities.

    python bench/cost_scaling.py [--data-dir ../shared/data]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from modalfuse.config import ModelConfig
from modalfuse.data import TargetEncoder, featurize, make_preprocessor
from modalfuse.datasets import load_dataset
from modalfuse.evaluate.benchmark import machine_info, markdown_table
from modalfuse.fusion import FUSIONS
from modalfuse.model import MultimodalNet
from modalfuse.train import batches

REPO = Path(__file__).resolve().parents[1]


def step_time(net: MultimodalNet, batch, steps: int = 30) -> float:
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    times = []
    for i in range(steps + 5):
        t0 = time.perf_counter()
        out = net(batch)
        loss = net.head.loss(out.output, batch.target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 5:
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def by_views(table: pd.DataFrame) -> pd.DataFrame:
    return table.reset_index().rename(columns={k: f"{k} views" for k in table.columns})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--output", default=str(REPO / "docs" / "results"))
    args = parser.parse_args()
    torch.manual_seed(0)
    ds = load_dataset("handwritten", data_dir=args.data_dir)
    rows = []
    for k in range(2, len(ds.modalities) + 1):
        mods = ds.modalities[:k]
        pres = {m.name: make_preprocessor(m) for m in mods}
        target = TargetEncoder("classification")
        feats = featurize(ds.train, pres, target, ds.target, fit=True)
        batch = next(iter(batches(feats, 64, shuffle=True)))
        info = {n: p.encoder_info() for n, p in pres.items()}
        for name in FUSIONS.names():
            if name == "cross_attention":
                continue  # vector views have one token each: same cost profile as attention
            net = MultimodalNet.build(mods, ModelConfig(fusion={"name": name}), info, "classification", 10)
            fusion_params = sum(p.numel() for p in net.fusion.parameters())
            rows.append({"method": name, "modalities": k, "fusion_params": fusion_params,
                         "total_params": sum(p.numel() for p in net.parameters()), "step_ms": round(step_time(net, batch), 2)})
            print(rows[-1], file=sys.stderr)
    frame = pd.DataFrame(rows)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "fusion_cost_scaling.csv", index=False)
    params = frame.pivot(index="method", columns="modalities", values="fusion_params")
    steps = frame.pivot(index="method", columns="modalities", values="step_ms")
    os.environ.setdefault("MPLCONFIGDIR", str(out / ".mplconfig"))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    colours = plt.cm.tab20.colors
    for i, method in enumerate(params.index):
        style = {"color": colours[i % len(colours)], "marker": "osD^v<>"[i % 7], "label": method}
        axes[0].plot(params.columns, params.loc[method], **style)
        axes[1].plot(steps.columns, steps.loc[method], **style)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("fusion parameters (log scale)")
    axes[1].set_ylabel("training step, ms (batch 64, whole model)")
    for ax in axes:
        ax.set_xlabel("number of modalities (handwritten views)")
        ax.set_xticks(list(params.columns))
    axes[1].legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "fusion_cost_scaling.png", dpi=110)
    text = "\n".join([
        "# Fusion cost vs number of modalities",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"- machine: {machine_info()}",
        "- command: `python bench/cost_scaling.py`",
        "- data: handwritten 6-view, the first k views; encoders vector_mlp (dim 64); fusion dim 128; batch 64; seed 0",
        "",
        "## Fusion parameters", "", markdown_table(by_views(params)), "",
        "## Training step (ms, median of 30; forward + backward + AdamW, whole model)", "", markdown_table(by_views(steps)), "",
    ])
    (out / "fusion_cost_scaling.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
