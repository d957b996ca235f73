"""Data layer: tables in, feature cache, datasets and batches with presence masks (kinds live in ``modalfuse.kinds``)."""
from .batch import Batch
from .dataset import Features, SkipReport, featurize
from ..kinds import Preprocessor, make_preprocessor
from .target import TargetEncoder, infer_task, require_target

__all__ = ["Batch", "Features", "SkipReport", "featurize", "Preprocessor", "make_preprocessor", "TargetEncoder", "infer_task", "require_target"]
