"""Training objectives beyond the task loss: modality dropout."""
from .modality_dropout import drop_modalities

__all__ = ["drop_modalities"]
