"""An audit trail for the server: one JSON line per request, in a file of the operator's choosing.

Each line holds the time (UTC), the API key's id (the first 12 hex digits of its SHA-256, never the key; ``-`` for
none), the model version served, the method and path, the status and the latency in ms. Request bodies are left out
unless the server was started with ``--audit-payloads`` (then the body, up to 64 KiB, as text or base64).
"""
from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

PAYLOAD_LIMIT = 64 * 1024


def key_id(authorization: Optional[bytes]) -> str:
    """The id of a bearer token: a SHA-256 prefix, so that lines can be told apart without keeping the secret."""
    if not authorization:
        return "-"
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return "-"
    return hashlib.sha256(token.strip().encode()).hexdigest()[:12]


class AuditLog:
    """Appends audit lines to ``path`` (thread-safe, one write and flush per line)."""

    def __init__(self, path: str | Path, model: str, payloads: bool = False) -> None:
        self.path, self.model, self.payloads = Path(path), model, payloads
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, record: dict) -> None:
        line = json.dumps(record, separators=(",", ":"), default=str)
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


class AuditMiddleware:
    """Pure ASGI: times each HTTP request and writes its audit line once the response has started."""

    def __init__(self, app, log: AuditLog) -> None:
        self.app, self.log = app, log

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status, body = time.perf_counter(), {"code": 500}, bytearray()

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        async def receive_wrapper():
            message = await receive()
            if self.log.payloads and message["type"] == "http.request" and len(body) < PAYLOAD_LIMIT:
                body.extend(message.get("body", b"")[: PAYLOAD_LIMIT - len(body)])
            return message

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        finally:
            headers = dict(scope.get("headers") or [])
            record = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "key_id": key_id(headers.get(b"authorization")),
                      "model": self.log.model, "method": scope.get("method"), "path": scope.get("path"), "status": status["code"],
                      "latency_ms": round(1000 * (time.perf_counter() - start), 3)}
            if self.log.payloads:
                try:
                    record["payload"] = body.decode("utf-8")
                except UnicodeDecodeError:
                    record["payload_base64"] = base64.b64encode(bytes(body)).decode()
            self.log.write(record)
