"""Train-time augmentation, per modality (``modalities[].augment``), applied to each training batch.

Each kind with augmentation registers an options model and a builder in ``AUGMENTS`` (one module per kind
family: ``image``, ``audio``, ``tokens`` for text, ``noise`` for tables and vectors). A builder turns the
options and the fitted preprocessor into a function of (batch values, generator); the loader seeds the
generator from (seed, epoch, batch number), so augmentation is the same in any number of worker processes.
Validation, evaluation and prediction never augment.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from ..registry import Registry

AUGMENTS: Registry = Registry("augmentation")


def augmenters(modalities: list, preprocessors: dict) -> Optional[dict[str, Callable]]:
    """The augmentation functions of the modalities that ask for any; None when none does."""
    out = {}
    for m in modalities:
        if m.augment is not None and m.augment.active():
            out[m.name] = AUGMENTS.get(m.kind).build(m.augment, preprocessors[m.name])
    return out or None


def parse_augment(kind: str, value: Any) -> Any:
    """A modality's ``augment`` section validated by its kind's options model (ValueError names the key)."""
    from ..options import parse_options

    if kind not in AUGMENTS.names():
        raise ValueError(f"augment: kind {kind!r} has no augmentation; kinds with it: {sorted(AUGMENTS.names())}")
    options = AUGMENTS.get(kind).Options
    if isinstance(value, options):
        return value
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    return parse_options(options, value or {}, "augment", f"kind {kind!r}")


from . import audio, image, noise, tokens  # noqa: E402,F401  (registration)
