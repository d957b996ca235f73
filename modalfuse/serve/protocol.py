"""uvicorn's HTTP/1.1 protocol with a read deadline, so slow or silent clients cannot hold sockets open.

uvicorn closes idle keep-alive connections, but a client that opens a socket and sends nothing,
or trickles its headers or body a byte at a time ("slowloris"), is kept forever: each byte
cancels the keep-alive timer. Here every request must arrive whole (headers and body) within
``read_timeout`` seconds of its first byte, or of the connection opening; otherwise the
connection is closed. Time spent computing the answer is not counted (the request timeout
covers it).
"""
from __future__ import annotations

import asyncio
from typing import Any, Optional

from uvicorn.protocols.http.h11_impl import H11Protocol


class DeadlineH11Protocol(H11Protocol):
    read_timeout: float = 30.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: Optional[asyncio.TimerHandle] = None
        self._armed_for: Any = None
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._armed_for = self.cycle
        self._deadline = self.loop.call_later(self.read_timeout, self._too_slow)

    def _disarm(self) -> None:
        if getattr(self, "_deadline", None) is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        idle = self.cycle is None or self.cycle.response_complete
        if self._deadline is None and idle:
            self._arm()  # the first byte of a new request on a kept-alive connection
        super().data_received(data)
        cycle = self.cycle
        if self._deadline is not None and cycle is not None and cycle is not self._armed_for and not cycle.more_body:
            self._disarm()  # the whole request is in

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._disarm()
        super().connection_lost(exc)


def protocol_class(read_timeout: float) -> type[DeadlineH11Protocol]:
    return type("DeadlineH11Protocol", (DeadlineH11Protocol,), {"read_timeout": float(read_timeout)})
