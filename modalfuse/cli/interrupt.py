"""Stopped runs never look successful: SIGINT/SIGTERM become an ``Interrupted`` exception with exit code 128 + signal.

Lightning turns Ctrl-C into ``sys.exit(1)`` and SIGTERM into a bare ``SystemExit`` (exit 0); an exception that is
neither a KeyboardInterrupt nor a SystemExit passes through its handlers unchanged, so the command can say what it
kept and exit 130 (SIGINT) or 143 (SIGTERM).
"""
from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Iterator


class Interrupted(BaseException):
    """Raised from the signal handler; BaseException so that ``except Exception`` in libraries lets it through."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(f"stopped by {self.name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@contextmanager
def interruptible() -> Iterator[None]:
    """Within the block SIGINT and SIGTERM raise :class:`Interrupted`; the previous handlers come back after."""
    def handler(signum, frame):  # noqa: ARG001
        raise Interrupted(signum)

    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: signals cannot be caught here
        pass
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
