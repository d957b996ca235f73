"""The joint VAE's network: one encoder (expert) per count modality, a product-of-experts posterior over the
modalities a cell has, one count decoder per modality, all conditioned on the cell's batch.

The loss is the ELBO of the joint posterior plus, weighted by ``cross_weight``, the ELBO of each single-modality
posterior decoding every modality the cell has (translation / co-learning as an auxiliary loss): it trains each
expert alone to explain the other modalities, which is what makes the embedding and the translations usable for
cells that lack a modality (the MVAE / MoPoE sub-sampling idea behind totalVI- and MultiVI-style models).
"""
from __future__ import annotations

import torch
from torch import nn

from .likelihoods import CountDecoder


class Expert(nn.Module):
    """log-normalised counts (or binary peaks) + batch → (mean, log variance) of q(z | this modality)."""

    def __init__(self, likelihood: str, n_in: int, n_batches: int, hidden: int, latent: int, dropout: float) -> None:
        super().__init__()
        self.likelihood = likelihood
        self.body = nn.Sequential(
            nn.Linear(n_in + n_batches, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.GELU(),
        )
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        if self.likelihood == "bernoulli":
            return (x > 0).float()
        if self.likelihood == "nb":
            return torch.log1p(x / x.sum(dim=1, keepdim=True).clamp_min(1.0) * 1e4)
        return torch.log1p(x)

    def forward(self, x: torch.Tensor, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(torch.cat([self.prepare(x), batch], dim=1))
        return self.mu(h), self.logvar(h).clamp(-10, 10)


def product_of_experts(experts: dict[str, tuple[torch.Tensor, torch.Tensor]], masks: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian product of the present experts and a standard-normal prior expert: precisions add."""
    any_mu = next(iter(experts.values()))[0]
    precision = torch.ones_like(any_mu)
    weighted = torch.zeros_like(any_mu)
    for name, (mu, logvar) in experts.items():
        p = torch.exp(-logvar) * masks[name].float()[:, None]
        precision = precision + p
        weighted = weighted + p * mu
    return weighted / precision, -torch.log(precision)


def kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per cell."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1)


class JointVAENet(nn.Module):
    def __init__(self, specs: dict[str, tuple[str, int]], n_batches: int, latent: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.specs = specs
        self.n_batches = n_batches
        self.experts = nn.ModuleDict({n: Expert(lik, d, n_batches, hidden, latent, dropout) for n, (lik, d) in specs.items()})
        self.decoders = nn.ModuleDict({n: CountDecoder(lik, latent, d, hidden, n_batches) for n, (lik, d) in specs.items()})

    def library(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """The decoder's depth input: total counts (nb), log detection rate relative to 5 % (bernoulli), unused (nbmix)."""
        if self.specs[name][0] == "bernoulli":
            return torch.log(((x > 0).float().mean(dim=1) + 1e-4) / 0.05)
        return x.sum(dim=1)

    def encode(self, inputs: dict[str, torch.Tensor], masks: dict[str, torch.Tensor], batch: torch.Tensor,
               use: list[str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        names = [n for n in self.specs if use is None or n in use]
        experts = {n: self.experts[n](inputs[n], batch) for n in names}
        return product_of_experts(experts, {n: masks[n] for n in names})

    def decode(self, name: str, z: torch.Tensor, batch: torch.Tensor, library: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.decoders[name](z, batch, library)

    def _elbo(self, mu, logvar, inputs, masks, batch, libraries, targets) -> tuple[torch.Tensor, torch.Tensor]:
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        recon = torch.zeros(mu.shape[0], device=mu.device)
        for name in targets:
            params = self.decoders[name](z, batch, libraries[name])
            recon = recon + self.decoders[name].nll(params, inputs[name]) * masks[name].float()
        return recon, kl_normal(mu, logvar)

    def loss(self, inputs, masks, batch, kl_weight: float = 1.0, cross_weight: float = 1.0) -> dict[str, torch.Tensor]:
        libraries = {n: self.library(n, inputs[n]) for n in self.specs}
        experts = {n: self.experts[n](inputs[n], batch) for n in self.specs}
        mu, logvar = product_of_experts(experts, masks)
        recon, kl = self._elbo(mu, logvar, inputs, masks, batch, libraries, list(self.specs))
        total = (recon + kl_weight * kl).mean()
        cross = torch.zeros((), device=mu.device)
        if cross_weight > 0 and len(self.specs) > 1:
            for name, (m_mu, m_logvar) in experts.items():
                present = masks[name].float()
                m_mu, m_logvar = product_of_experts({name: (m_mu, m_logvar)}, {name: masks[name]})
                r, k = self._elbo(m_mu, m_logvar, inputs, masks, batch, libraries, list(self.specs))
                cross = cross + ((r + kl_weight * k) * present).sum() / present.sum().clamp_min(1.0)
            total = total + cross_weight * cross / len(self.specs)
        return {"loss": total, "recon": recon.mean().detach(), "kl": kl.mean().detach(), "cross": cross.detach()}
