"""Audio from WAV/FLAC/OGG files (soundfile) or arrays: mono, resampled, padded/cut to a fixed length.

The log-mel spectrogram is computed by the audio encoder, in torch, so served models take raw
waveforms.
"""
from __future__ import annotations

import struct
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from ...errors import DataError
from .base import Preprocessor, resolve_path


class AudioPreprocessor(Preprocessor):
    kind = "audio"
    cacheable = True

    @property
    def length(self) -> int:
        return int(round(self.options.sample_rate * self.options.max_seconds))

    def _decode(self, cells: tuple[Any, ...], base_dir: Path | None) -> np.ndarray | None:
        value = cells[0]
        if isinstance(value, np.ndarray):
            wave, rate = value.astype(np.float32).reshape(-1), self.options.sample_rate
        else:
            path = resolve_path(value, base_dir)
            if not path.exists():
                return None
            try:
                if path.suffix.lower() == ".wav":
                    _check_wav_complete(path)
                wave, rate = sf.read(str(path), dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as err:
                raise DataError(f"cannot decode audio ({err}); expected a complete WAV/FLAC/OGG file", file=path) from None
            wave = wave.mean(axis=1)
        if rate != self.options.sample_rate:
            g = gcd(int(rate), self.options.sample_rate)
            wave = resample_poly(wave, self.options.sample_rate // g, int(rate) // g).astype(np.float32)
        out = np.zeros(self.length, dtype=np.float32)
        n = min(self.length, wave.shape[0])
        out[:n] = wave[:n]
        return out

    def encode(self, value: np.ndarray) -> np.ndarray:
        return value

    def empty(self) -> np.ndarray:
        return np.zeros(self.length, dtype=np.float32)

    def encoder_info(self) -> dict[str, Any]:
        return {"sample_rate": self.options.sample_rate, "length": self.length}


def _check_wav_complete(path: Path) -> None:
    """Refuse a RIFF/WAVE file whose data chunk is shorter than its header declares.

    libsndfile silently reads what is there, so a truncated upload would pass unnoticed.
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
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
