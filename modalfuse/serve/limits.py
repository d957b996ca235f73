"""What one request may cost the server: records, decoded size, time; checked before the work is done.

Every limit is a ``ServeSettings`` field (and a ``modalfuse serve`` flag). Sizes are counted in
decoded values (pixels × bands, audio samples) read from file headers, so a small compressed
file that decodes to a huge image (a "pixel bomb") is refused before it is decoded; decoding
work above ``OFFLOAD_VALUES`` runs in worker threads, never on the event loop.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Optional

from ..errors import ConfigError

#: decoding more values than this (about a 1000 × 1000 image) runs off the event loop
OFFLOAD_VALUES = 1_000_000


@dataclass
class ServeSettings:
    max_batch: int = 64
    max_wait_ms: float = 5.0
    timeout_s: float = 10.0
    max_body_mb: float = 5.0
    api_key: Optional[str] = None
    threads: Optional[int] = 1
    #: records per request (413 past it); inference runs in chunks of ``max_batch`` whatever the count
    max_records: int = 1024
    #: decoded float32 size of one request's images and audio, in MB (413 past it, before decoding)
    max_decoded_mb: float = 256.0
    #: a request's headers and body must arrive within this many seconds of its first byte (slow clients are cut off)
    read_timeout_s: float = 30.0
    #: open connections at once; more are answered 503
    max_connections: int = 256
    #: worker threads that decode large images and audio
    decode_threads: int = 1
    #: one line per request (time, key id, model version, status, latency): an ``audit.AuditLog``, or None
    audit: Optional[Any] = None

    def __post_init__(self) -> None:
        positive = {"max_batch", "timeout_s", "max_body_mb", "max_records", "max_decoded_mb", "read_timeout_s",
                    "max_connections", "decode_threads"}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in positive | {"max_wait_ms", "threads"} and value is not None:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                if not ok or value < 0 or (f.name in positive and value == 0):
                    need = "a positive number" if f.name in positive else "a number ≥ 0"
                    raise ConfigError(f"server setting {f.name}: expected {need}, got {value!r}")

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 2**20)

    @property
    def max_decoded_values(self) -> int:
        return int(self.max_decoded_mb * 2**20 / 4)


class PayloadTooLarge(Exception):
    """A request over one of the limits (413), with the field that crossed it."""

    def __init__(self, message: str, field: Optional[str] = None) -> None:
        self.message, self.field = message, field
        super().__init__(message)


def check_port(port: int) -> int:
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError(f"--port: expected a TCP port from 1 to 65535, got {port!r}")
    return port
