"""Encoders, one file per kind, created by name from ``ENCODERS``."""
from . import (  # noqa: F401  (registration)
    audio,
    counts,
    graph_gat,
    graph_gcn,
    graph_gin,
    identity,
    image,
    linear,
    pretrained_image,
    pretrained_text,
    sequence,
    sequence_positional,
    tabular,
    text,
    timeseries_cnn,
    timeseries_transformer,
    vector,
)
from .base import ENCODERS, Encoder, EncoderInfo, build_encoder

__all__ = ["ENCODERS", "Encoder", "EncoderInfo", "build_encoder"]
