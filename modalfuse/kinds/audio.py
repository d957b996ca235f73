"""Audio from WAV/FLAC/OGG files or file bytes (soundfile), or arrays: mono, resampled, padded/cut to a fixed length.

The log-mel spectrogram is computed by the audio encoder, in torch, so served models take raw
waveforms.
"""
from __future__ import annotations

import io
import struct
from math import gcd
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from pydantic import Field
import soundfile as sf

from ..errors import DataError
from .base import KINDS, FileKind, KindOptions, resolve_path


class AudioOptions(KindOptions):
    sample_rate: int = Field(8000, gt=0)
    max_seconds: float = Field(1.0, gt=0)


@KINDS.register("audio")
class AudioPreprocessor(FileKind):
    Options = AudioOptions
    default_encoder = "audio_cnn"
    onnx_unsupported = "the log-mel front end uses a complex STFT that the TorchScript ONNX exporter cannot express"
    stateless = True
    worker_imports = ("scipy.signal",)  # resampling; ~0.8 s to import

    @property
    def length(self) -> int:
        return int(round(self.options.sample_rate * self.options.max_seconds))

    def _decode(self, cells: tuple[Any, ...], base_dir: Path | None) -> np.ndarray | None:
        value = cells[0]
        if isinstance(value, np.ndarray):
            wave, rate = value.astype(np.float32).reshape(-1), self.options.sample_rate
        else:
            path = None if isinstance(value, (bytes, bytearray)) else resolve_path(value, base_dir)
            if path is not None and not path.exists():
                return None
            try:
                with open(path, "rb") if path is not None else io.BytesIO(value) as fh:
                    _check_wav_complete(fh)
                    fh.seek(0)
                    wave, rate = sf.read(fh, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError, ValueError, OSError, TypeError, struct.error) as err:
                raise DataError(f"cannot decode audio ({err}); expected a complete WAV/FLAC/OGG file", file=path) from None
            wave = wave.mean(axis=1)
        if wave.size == 0:
            raise DataError("the audio holds no samples; expected a non-empty recording")
        if rate != self.options.sample_rate:
            from scipy.signal import resample_poly  # imported here: scipy.signal takes ~0.8 s to import

            g = gcd(int(rate), self.options.sample_rate)
            wave = resample_poly(wave, self.options.sample_rate // g, int(rate) // g).astype(np.float32)
        out = np.zeros(self.length, dtype=np.float32)
        n = min(self.length, wave.shape[0])
        out[:n] = wave[:n]
        return out

    def request_size(self, cells: tuple[Any, ...]) -> int:
        """Samples × channels, from the file header (nothing is decoded); 0 when unreadable (decoding then says why)."""
        value = cells[0]
        if not isinstance(value, (bytes, bytearray)):
            return super().request_size(cells)
        try:
            info = sf.info(io.BytesIO(value))
            return int(info.frames) * int(info.channels)
        except (sf.LibsndfileError, RuntimeError, ValueError, OSError, TypeError):
            return 0

    def encode(self, value: np.ndarray) -> np.ndarray:
        return value

    def empty(self) -> np.ndarray:
        return np.zeros(self.length, dtype=np.float32)

    def stored(self):
        """Samples as int16 (half of float32; exact for 16-bit recordings at ``sample_rate``)."""
        return (self.length,), np.dtype(np.int16)

    def compact(self, value: np.ndarray) -> np.ndarray:
        return np.clip(np.round(value * 32768.0), -32768, 32767).astype(np.int16)

    def expand(self, arrays: np.ndarray) -> np.ndarray:
        return arrays.astype(np.float32) / np.float32(32768.0)

    def encode_stored(self, arrays: np.ndarray) -> np.ndarray:
        return self.expand(arrays)

    def fit_start(self) -> None:  # nothing to fit: no values gathered
        pass

    def fit_update(self, values, counts=None) -> None:
        pass

    def fit_finish(self) -> None:
        self.fitted = True

    def encoder_info(self) -> dict[str, Any]:
        return {"sample_rate": self.options.sample_rate, "length": self.length}

    def schema(self) -> dict[str, Any]:
        return {**super().schema(), "type": "string (base64 audio file bytes: WAV, FLAC, OGG)",
                "sample_rate": self.options.sample_rate, "max_seconds": self.options.max_seconds}


def _check_wav_complete(fh: BinaryIO) -> None:
    """Refuse a RIFF/WAVE stream whose data chunk is shorter than its header declares (other formats pass).

    libsndfile silently reads what is there, so a truncated upload would pass unnoticed.
    """
    size = fh.seek(0, io.SEEK_END)
    fh.seek(0)
    head = fh.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return
    offset = 12
    while offset + 8 <= size:
        fh.seek(offset)
        chunk_id, chunk_size = struct.unpack("<4sI", fh.read(8))
        if chunk_id == b"data":
            available = size - offset - 8
            if chunk_size > available:
                raise ValueError(f"truncated WAV: header declares {chunk_size} bytes of audio, file holds {available}")
            return
        offset += 8 + chunk_size + (chunk_size & 1)
    raise ValueError("WAV file has no data chunk")
