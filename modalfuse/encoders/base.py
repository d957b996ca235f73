"""Encoder contract and registry: an encoder maps one modality's batch to embeddings [n, dim]."""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..registry import Registry


class Encoder(nn.Module):
    """Base class: subclasses take ``dim`` (output width) and ``info`` (from the preprocessor).

    ``kinds`` names the modality kinds whose preprocessed batches the encoder accepts; a config that
    pairs it with another kind is refused when it is read. Extra constructor keywords are its typed options.
    """

    kinds: ClassVar[tuple[str, ...]] = ()

    def __init__(self, dim: int, info: dict[str, Any]) -> None:
        super().__init__()
        self.dim = dim

    def tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token embeddings [n, T, dim] and their validity [n, T] for token-level fusion.

        Encoders that keep a sequence (text, audio frames, image positions, residues) override
        this; the default is the pooled embedding as a single token.
        """
        emb = self(x)
        return emb[:, None], torch.ones(emb.shape[0], 1, dtype=torch.bool, device=emb.device)


ENCODERS: Registry[Encoder] = Registry("encoder", fixed=("dim", "info"))


def build_encoder(name: str, dim: int, info: dict[str, Any], options: dict[str, Any], where: str = "encoder") -> Encoder:
    """Create a registered encoder from its name, output width, preprocessor info and options."""
    return ENCODERS.create(name, options, where, dim=dim, info=info)


def mlp(sizes: list[int], dropout: float = 0.0, last_activation: bool = False) -> nn.Sequential:
    """Linear layers with GELU and dropout between them."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or last_activation:
            layers += [nn.GELU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)
