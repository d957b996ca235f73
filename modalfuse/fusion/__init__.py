"""Fusion methods, one file each, created by name from ``FUSIONS`` (``modalfuse fusions`` lists them)."""
from . import (  # noqa: F401  (registration)
    attention,
    concat,
    cross_attention,
    early,
    evidential,
    gated,
    hybrid,
    inverse_variance,
    late,
    low_rank,
    max,
    squeeze_excite,
    sum,
    tensor,
)
from .base import FUSIONS, Fusion, FusionOutput, encode_embeddings, encode_tokens, masked_mean

__all__ = ["FUSIONS", "Fusion", "FusionOutput", "encode_embeddings", "encode_tokens", "masked_mean"]
