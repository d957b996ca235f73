"""Predictions of one or several trained networks, averaged: ensemble members and Monte Carlo dropout passes.

The epistemic variance is the spread of probabilities (or predictions) across passes and members; the aleatoric
part is the head's own uncertainty, averaged. Batches are gathered by index, so a server's one small batch
costs no DataLoader.
"""
from __future__ import annotations

from typing import Any, Optional

import torch

from .data.dataset import Features
from .heads.base import mean


def average_outputs(members: list, features: Features, size: int, mc_samples: int, task: str, temperature: float,
                    shares: Optional[list[float]] = None) -> dict[str, Any]:
    """``output`` (what predictions are read from, temperature applied), ``weights`` (per-modality, where the fusion
    has them) and ``uncertainty`` columns (aleatoric; with MC dropout or an ensemble, epistemic and total).

    ``shares``: each member's weight in the average (a weighted ensemble of recipes; they sum to 1); None: equal.
    Each member's own fusion combines its dropout passes; the first member's head combines the members."""

    head = members[0].head
    parts: dict[str, list] = {"output": [], "weights": [], "aleatoric": [], "epistemic": []}
    n = len(features)
    stochastic = mc_samples > 0
    spreads = stochastic or len(members) > 1  # the epistemic part needs several passes
    share = None if shares is None else torch.tensor(shares, dtype=torch.float32)
    for start in range(0, n, size):  # batches gathered by index directly: a server's one small batch costs no DataLoader
        batch = features[torch.arange(start, min(n, start + size))]
        outs, weights, weight_shares, aleatoric, spread = [], [], [], [], []
        for i, net in enumerate(members):
            if net.training != stochastic:
                net.train(stochastic)
            passes = [net(batch) for _ in range(max(1, mc_samples))]
            out, w = passes[0].output, passes[0].weights
            if mc_samples > 0:
                out, w = net.fusion.mc_combine([p.aux for p in passes], batch.masks) if hasattr(net.fusion, "mc_combine") \
                    else (net.head.average([p.output for p in passes]), w)
            outs.append(out)
            if w is not None:
                weights.append(w)
                weight_shares.append(1.0 if share is None else float(share[i]))
            if hasattr(net.head, "uncertainty"):
                aleatoric.append(torch.stack([net.head.uncertainty(p.output) for p in passes]).mean(dim=0))
            if spreads:
                spread += [net.head.proba(p.output) if task == "classification" else net.head.predict(p.output)[:, None] for p in passes]
        parts["output"].append(head.average(outs, share))
        if weights:
            parts["weights"].append(torch.stack(weights).mean(dim=0) if share is None else _weighted(torch.stack(weights), weight_shares))
        if aleatoric:
            parts["aleatoric"].append(torch.stack(aleatoric).mean(dim=0) if share is None or len(aleatoric) != len(members)
                                      else mean(torch.stack(aleatoric), share))
        if len(spread) > 1:
            stacked = torch.stack(spread)
            if share is None:
                parts["epistemic"].append(stacked.var(dim=0).sum(dim=1))
            else:  # the unbiased weighted variance (reliability weights), each pass of member i weighing share_i / passes
                w = share.repeat_interleave(max(1, mc_samples)) / max(1, mc_samples)
                centre = mean(stacked, w)
                parts["epistemic"].append((mean((stacked - centre) ** 2, w) / (1 - (w ** 2).sum())).sum(dim=1))
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


def _weighted(stacked: torch.Tensor, shares: list[float]) -> torch.Tensor:
    """The members' per-modality weights averaged by their shares, renormalised over the members that have them."""
    w = torch.tensor(shares, dtype=stacked.dtype)
    return mean(stacked, w / w.sum())
