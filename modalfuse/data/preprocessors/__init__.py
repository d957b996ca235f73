"""One preprocessor per modality kind, looked up by kind."""
from __future__ import annotations

from ...config import ModalityConfig
from .audio import AudioPreprocessor
from .base import Preprocessor, is_missing
from .graph import GraphPreprocessor
from .image import ImagePreprocessor
from .sequence import SequencePreprocessor
from .tabular import TabularPreprocessor
from .text import TextPreprocessor
from .vector import VectorPreprocessor

PREPROCESSORS: dict[str, type[Preprocessor]] = {
    cls.kind: cls
    for cls in (ImagePreprocessor, AudioPreprocessor, TextPreprocessor, TabularPreprocessor, SequencePreprocessor, VectorPreprocessor, GraphPreprocessor)
}


def make_preprocessor(config: ModalityConfig) -> Preprocessor:
    return PREPROCESSORS[config.kind](config)


__all__ = ["Preprocessor", "PREPROCESSORS", "make_preprocessor", "is_missing"]
