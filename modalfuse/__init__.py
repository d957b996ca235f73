"""modalfuse: multimodal learning on PyTorch — one encoder per modality, fusion by name, honest evaluation."""
__version__ = "0.1.0"

from .config import Config, ModalityConfig, ModelConfig, TrainConfig, load_config  # noqa: E402
from .errors import ConfigError, DataError  # noqa: E402

__all__ = ["MultimodalModel", "Config", "ModalityConfig", "ModelConfig", "TrainConfig", "load_config", "ConfigError", "DataError", "__version__"]


def __getattr__(name: str):
    """``MultimodalModel`` is imported on first use: it pulls in torch and Lightning (~5 s), which
    ``modalfuse --help`` and the config tools do not need."""
    if name == "MultimodalModel":
        from .api import MultimodalModel

        return MultimodalModel
    raise AttributeError(f"module 'modalfuse' has no attribute {name!r}")
