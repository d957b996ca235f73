"""Sweeps on Ray Tune: ``modalfuse tune CONFIG`` reads the config's ``search:`` section (see :mod:`.space`)."""
from .space import SearchConfig, apply_params

__all__ = ["SearchConfig", "apply_params"]
