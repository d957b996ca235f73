"""Fusion methods, one file each, created by name from ``FUSIONS``."""
from . import concat, late, sum  # noqa: F401  (registration)
from .base import FUSIONS, Fusion, FusionOutput, masked_mean

__all__ = ["FUSIONS", "Fusion", "FusionOutput", "masked_mean"]
