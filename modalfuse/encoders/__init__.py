"""Encoders, one file per kind, created by name from ``ENCODERS``."""
from . import audio, image, linear, pretrained_text, sequence, tabular, text, vector  # noqa: F401  (registration)
from .base import ENCODERS, Encoder, build_encoder

__all__ = ["ENCODERS", "Encoder", "build_encoder"]
