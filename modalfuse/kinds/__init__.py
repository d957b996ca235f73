"""Modality kinds, one module each, created by name from ``KINDS`` (``modalfuse kinds`` lists them)."""
from . import audio, counts, graph, image, sequence, tabular, text, timeseries, vector  # noqa: F401  (registration)
from .base import KINDS, KindOptions, Preprocessor, is_missing, resolve_path

__all__ = ["KINDS", "KindOptions", "Preprocessor", "is_missing", "make_preprocessor", "resolve_path"]


def make_preprocessor(config) -> Preprocessor:
    """The preprocessor of a modality config's kind."""
    return KINDS.get(config.kind)(config)
