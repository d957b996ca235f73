"""Images from files (PNG, JPEG, ... via Pillow), file bytes or arrays, resized and normalised per channel."""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from ..errors import DataError
from .base import KINDS, FileKind, KindOptions, resolve_path


class ImageOptions(KindOptions):
    size: tuple[int, int] = (32, 32)
    channels: Literal[1, 3] = 1


@KINDS.register("image")
class ImagePreprocessor(FileKind):
    Options = ImageOptions
    default_encoder = "image_cnn"

    def setup(self) -> None:
        self.mean = [0.0] * self.options.channels
        self.std = [1.0] * self.options.channels

    def _decode(self, cells: tuple[Any, ...], base_dir: Path | None) -> np.ndarray | None:
        value = cells[0]
        if isinstance(value, np.ndarray):
            array = _array_to_chw(value, self.options.channels)
        else:
            path = None if isinstance(value, (bytes, bytearray)) else resolve_path(value, base_dir)
            if path is not None and not path.exists():
                return None
            try:
                with Image.open(path if path is not None else io.BytesIO(value)) as img:
                    mode = "L" if self.options.channels == 1 else "RGB"
                    array = _planes(img if img.mode == mode else img.convert(mode))
            except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
                raise DataError(f"cannot decode image ({err}); expected a readable PNG/JPEG/BMP/TIFF file", file=path) from None
        tensor = torch.from_numpy(np.ascontiguousarray(array))[None]
        resized = F.interpolate(tensor, size=tuple(self.options.size), mode="bilinear", antialias=True, align_corners=False)
        return resized[0].numpy().astype(np.float32)

    def request_size(self, cells: tuple[Any, ...]) -> int:
        """Pixels × bands, from the file header (nothing is decoded); 0 when unreadable (decoding then says why)."""
        value = cells[0]
        if not isinstance(value, (bytes, bytearray)):
            return super().request_size(cells)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(value)) as img:
                    width, height = img.size
                    return width * height * max(len(img.getbands()), self.options.channels)
        except Image.DecompressionBombError:
            return 2**62
        except (UnidentifiedImageError, OSError, ValueError):
            return 0

    def fit(self, values: list[np.ndarray]) -> None:
        self.fit_start()
        self.fit_update(values)
        self.fit_finish()

    def fit_start(self) -> None:
        """Running per-channel pixel sums (float64): fitting never stacks the split."""
        self._sums = np.zeros((3, self.options.channels), dtype=np.float64)  # pixels, sum, sum of squares

    def fit_update(self, values, counts: Optional[np.ndarray] = None) -> None:
        for start in range(0, len(values), 256):
            block = np.asarray(values[start:start + 256], dtype=np.float64)
            if not len(block):
                continue
            w = np.ones(len(block)) if counts is None else np.asarray(counts[start:start + 256], dtype=np.float64)
            per = block.shape[2] * block.shape[3]
            self._sums[0] += w.sum() * per
            self._sums[1] += np.einsum("n,nc->c", w, block.sum(axis=(2, 3)))
            self._sums[2] += np.einsum("n,nc->c", w, (block * block).sum(axis=(2, 3)))

    def fit_finish(self) -> None:
        n, s, ss = self._sums
        if n.min() > 0:
            mean = s / n
            self.mean = mean.tolist()
            self.std = (np.sqrt(np.maximum(ss / n - mean * mean, 0.0)) + 1e-6).tolist()
        self.fitted = True

    def encode(self, value: np.ndarray) -> np.ndarray:
        mean = np.asarray(self.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.std, dtype=np.float32)[:, None, None]
        return (value - mean) / std

    def stored(self):
        """Pixels as uint8 (a quarter of float32; exact for 8-bit images already at ``size``, else within 1/510)."""
        return (self.options.channels, *self.options.size), np.dtype(np.uint8)

    def compact(self, value: np.ndarray) -> np.ndarray:
        return np.round(np.clip(value, 0.0, 1.0) * 255.0).astype(np.uint8)

    def expand(self, arrays: np.ndarray) -> np.ndarray:
        return arrays.astype(np.float32) / np.float32(255.0)

    def encode_stored(self, arrays: np.ndarray) -> np.ndarray:
        mean = np.asarray(self.mean, dtype=np.float32)[None, :, None, None]
        std = np.asarray(self.std, dtype=np.float32)[None, :, None, None]
        return (self.expand(arrays) - mean) / std

    def empty(self) -> np.ndarray:
        return np.zeros((self.options.channels, *self.options.size), dtype=np.float32)

    def encoder_info(self) -> dict[str, Any]:
        """Channels, and the per-channel mean and std the pixels were standardised with (pretrained encoders undo them)."""
        return {"in_channels": self.options.channels, "mean": list(self.mean), "std": list(self.std)}

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean, self.std = state["mean"], state["std"]
        super().load_state_dict(state)

    def schema(self) -> dict[str, Any]:
        return {**super().schema(), "type": "string (base64 image file bytes: PNG, JPEG, ...)",
                "size": list(self.options.size), "channels": self.options.channels}


def _planes(img: Image.Image) -> np.ndarray:
    """C×H×W float32 pixels in 0..1, filled one band at a time: the same values as ``asarray(img) / 255`` transposed,
    without its H×W×C float copy (a large upload costs about 1.3× its float32 size, not 3×)."""
    bands = len(img.getbands())
    out = np.empty((bands, img.height, img.width), dtype=np.float32)
    for i in range(bands):
        out[i] = np.asarray(img if bands == 1 else img.getchannel(i))
    out /= 255.0
    return out


def _array_to_chw(value: np.ndarray, channels: int) -> np.ndarray:
    """Accept H×W, H×W×C or C×H×W arrays; uint8 is scaled to 0..1."""
    array = value.astype(np.float32) / (255.0 if value.dtype == np.uint8 else 1.0)
    if array.ndim == 2:
        array = array[None]
    elif array.ndim == 3 and array.shape[-1] in (1, 3) and array.shape[0] not in (1, 3):
        array = array.transpose(2, 0, 1)
    if array.ndim != 3:
        raise DataError(f"expected an image array of shape H×W, H×W×C or C×H×W, got shape {value.shape}")
    if array.shape[0] != channels:
        array = array.mean(axis=0, keepdims=True) if channels == 1 else np.repeat(array[:1], 3, axis=0)
    return array
