"""Training loop (Lightning), separate from the model."""
from .base import NetModule
from .module import MultimodalModule
from .trainer import batches, fit_net

__all__ = ["MultimodalModule", "NetModule", "batches", "fit_net"]
