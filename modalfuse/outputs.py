"""Predictions of one or several trained networks, averaged: ensemble members and Monte Carlo dropout passes.

The epistemic variance is the spread of probabilities (or predictions) across passes and members; the aleatoric
part is the head's own uncertainty, averaged. Batches are gathered by index, so a server's one small batch
costs no DataLoader.
"""
from __future__ import annotations

from typing import Any

import torch

from .data.dataset import Features


def average_outputs(members: list, features: Features, size: int, mc_samples: int, task: str, temperature: float) -> dict[str, Any]:
    """``output`` (what predictions are read from, temperature applied), ``weights`` (per-modality, where the fusion
    has them) and ``uncertainty`` columns (aleatoric; with MC dropout or an ensemble, epistemic and total)."""

    head, fusion = members[0].head, members[0].fusion
    parts: dict[str, list] = {"output": [], "weights": [], "aleatoric": [], "epistemic": []}
    n = len(features)
    stochastic = mc_samples > 0
    spreads = stochastic or len(members) > 1  # the epistemic part needs several passes
    for start in range(0, n, size):  # batches gathered by index directly: a server's one small batch costs no DataLoader
        batch = features[torch.arange(start, min(n, start + size))]
        outs, weights, aleatoric, spread = [], [], [], []
        for net in members:
            if net.training != stochastic:
                net.train(stochastic)
            passes = [net(batch) for _ in range(max(1, mc_samples))]
            out, w = passes[0].output, passes[0].weights
            if mc_samples > 0:
                out, w = fusion.mc_combine([p.aux for p in passes], batch.masks) if hasattr(fusion, "mc_combine") else (head.average([p.output for p in passes]), w)
            outs.append(out)
            if w is not None:
                weights.append(w)
            if hasattr(head, "uncertainty"):
                aleatoric.append(torch.stack([head.uncertainty(p.output) for p in passes]).mean(dim=0))
            if spreads:
                spread += [head.proba(p.output) if task == "classification" else head.predict(p.output)[:, None] for p in passes]
        parts["output"].append(head.average(outs))
        if weights:
            parts["weights"].append(torch.stack(weights).mean(dim=0))
        if aleatoric:
            parts["aleatoric"].append(torch.stack(aleatoric).mean(dim=0))
        if len(spread) > 1:
            parts["epistemic"].append(torch.stack(spread).var(dim=0).sum(dim=1))
    if stochastic:
        for net in members:
            net.eval()
    output = torch.cat(parts["output"]) if parts["output"] else torch.zeros(0, head.out_dim)
    if temperature != 1.0:
        output = output / temperature
    unc = {k: torch.cat(parts[k]) for k in ("aleatoric", "epistemic") if parts[k]}
    if len(unc) == 2:
        unc["total"] = unc["aleatoric"] + unc["epistemic"]
    return {"output": output, "weights": torch.cat(parts["weights"]) if parts["weights"] else None, "uncertainty": unc}
