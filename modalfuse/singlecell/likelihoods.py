"""Count likelihoods of the joint VAE's decoders, one per modality type.

- ``nb`` (RNA): negative binomial with mean = library size × softmax rate and a per-feature dispersion (scVI);
- ``nbmix`` (surface protein, ADT): a two-component NB mixture, a per-protein background and a foreground above it
  (totalVI's protein model: the background is the ambient / non-specific binding every cell shows);
- ``bernoulli`` (ATAC peaks or bins): detected or not, with a per-cell depth offset (MultiVI's accessibility model).
Each decoder returns its parameters; ``nll`` scores observed values and ``mean`` gives the expected value.
"""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

LIKELIHOODS = ("nb", "nbmix", "bernoulli")


def nb_log_prob(x: torch.Tensor, mu: torch.Tensor, theta: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """log NB(x; mean mu, inverse dispersion theta), elementwise."""
    log_theta_mu = torch.log(theta + mu + eps)
    return (theta * (torch.log(theta + eps) - log_theta_mu) + x * (torch.log(mu + eps) - log_theta_mu)
            + torch.lgamma(x + theta) - torch.lgamma(theta) - torch.lgamma(x + 1))


class CountDecoder(nn.Module):
    """[z, batch one-hot] → the likelihood's parameters for ``n_out`` features."""

    def __init__(self, likelihood: str, n_in: int, n_out: int, hidden: int, n_batches: int) -> None:
        super().__init__()
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        self.likelihood = likelihood
        self.body = nn.Sequential(nn.Linear(n_in + n_batches, hidden), nn.LayerNorm(hidden), nn.GELU())
        self.out = nn.Linear(hidden, n_out * (3 if likelihood == "nbmix" else 1))
        self.log_theta = nn.Parameter(torch.full((n_out,), math.log(2.0)))
        # nbmix: per-batch background mean per protein (log scale); bernoulli: per-feature bias
        self.background = nn.Parameter(torch.zeros(max(n_batches, 1), n_out))
        self.n_out = n_out

    def forward(self, z: torch.Tensor, batch: torch.Tensor, library: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.body(torch.cat([z, batch], dim=1))
        out = self.out(h)
        if self.likelihood == "nb":
            return {"mu": library[:, None] * torch.softmax(out, dim=1), "rate": torch.softmax(out, dim=1)}
        if self.likelihood == "bernoulli":
            return {"logits": out + library[:, None]}
        fg, logit_pi, _ = out.split(self.n_out, dim=1)
        b = batch.argmax(dim=1) if batch.shape[1] else torch.zeros(z.shape[0], dtype=torch.long, device=z.device)
        back = torch.exp(self.background[b])
        return {"back": back, "fore": back * (1 + F.softplus(fg)), "logit_pi": logit_pi}

    def nll(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood per cell (summed over features)."""
        if self.likelihood == "bernoulli":
            return F.binary_cross_entropy_with_logits(params["logits"], (x > 0).float(), reduction="none").sum(dim=1)
        theta = torch.exp(self.log_theta)
        if self.likelihood == "nb":
            return -nb_log_prob(x, params["mu"], theta).sum(dim=1)
        lp_back = nb_log_prob(x, params["back"], theta)
        lp_fore = nb_log_prob(x, params["fore"], theta)
        pi = params["logit_pi"]  # logit of "foreground"
        mix = torch.logsumexp(torch.stack([lp_back - F.softplus(pi), lp_fore - F.softplus(-pi)]), dim=0)
        return -mix.sum(dim=1)

    def mean(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Expected value: NB rate per 10,000 counts (nb), expected protein counts (nbmix), detection probability."""
        if self.likelihood == "nb":
            return params["rate"] * 1e4
        if self.likelihood == "bernoulli":
            return torch.sigmoid(params["logits"])
        pi = torch.sigmoid(params["logit_pi"])
        return (1 - pi) * params["back"] + pi * params["fore"]

    def foreground(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """nbmix only: the expected protein signal with the background removed (totalVI's denoised protein)."""
        return torch.sigmoid(params["logit_pi"]) * params["fore"]
