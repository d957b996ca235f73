"""Training loop (Lightning), separate from the model."""
from .module import MultimodalModule
from .trainer import batches, fit_net

__all__ = ["MultimodalModule", "batches", "fit_net"]
