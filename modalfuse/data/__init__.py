"""Data layer: modality preprocessors, feature cache, batches with presence masks."""
from .batch import Batch
from .dataset import Features, SkipReport, featurize
from .preprocessors import PREPROCESSORS, Preprocessor, make_preprocessor
from .target import TargetEncoder, infer_task

__all__ = ["Batch", "Features", "SkipReport", "featurize", "PREPROCESSORS", "Preprocessor", "make_preprocessor", "TargetEncoder", "infer_task"]
