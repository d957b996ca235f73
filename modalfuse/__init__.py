"""modalfuse: multimodal learning on PyTorch — one encoder per modality, fusion by name, honest evaluation."""
__version__ = "0.1.0"

from .api import MultimodalModel  # noqa: E402
from .config import Config, ModalityConfig, ModelConfig, TrainConfig, load_config  # noqa: E402
from .errors import ConfigError, DataError  # noqa: E402

__all__ = ["MultimodalModel", "Config", "ModalityConfig", "ModelConfig", "TrainConfig", "load_config", "ConfigError", "DataError", "__version__"]
