"""Training objectives beyond the task loss: modality dropout, multimodal mixup, OGM-GE gradient modulation."""
from .gradient_modulation import correct_class_scores, modulate_gradients, modulation_coefficients, unimodal_probabilities
from .mixup import Mix, draw_mix
from .modality_dropout import drop_modalities

__all__ = [
    "Mix",
    "correct_class_scores",
    "draw_mix",
    "drop_modalities",
    "modulate_gradients",
    "modulation_coefficients",
    "unimodal_probabilities",
]
