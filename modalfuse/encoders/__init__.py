"""Encoders, one file per kind, created by name from ``ENCODERS``."""
from . import audio, graph_gat, graph_gcn, graph_gin, identity, image, linear, pretrained_image, pretrained_text, sequence, sequence_positional, tabular, text, vector  # noqa: F401  (registration)
from .base import ENCODERS, Encoder, build_encoder

__all__ = ["ENCODERS", "Encoder", "build_encoder"]
