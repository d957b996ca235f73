"""Stopped runs never look successful: SIGINT/SIGTERM become an ``Interrupted`` exception with exit code 128 + signal.

Lightning turns Ctrl-C into ``sys.exit(1)`` and SIGTERM into a bare ``SystemExit`` (exit 0); an exception that is
neither a KeyboardInterrupt nor a SystemExit passes through its handlers unchanged, so the command can say what it
kept and exit 130 (SIGINT) or 143 (SIGTERM).

While a trainer that writes checkpoints runs, it registers itself with :func:`defer`: the first signal is then
handed to it (``notice(signum)``), and it writes a checkpoint at the next safe point (the end of a step or epoch)
before raising :class:`Interrupted`; a second signal stops at once.
"""
from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Any, Iterator, Optional


class Interrupted(BaseException):
    """Raised from the signal handler; BaseException so that ``except Exception`` in libraries lets it through."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        #: the checkpoint folder written before stopping, where there is one
        self.checkpoint: Optional[Any] = None
        self.name = signal.Signals(signum).name
        super().__init__(f"stopped by {self.name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


_deferred: list[Any] = []


def defer(target: Any) -> None:
    """Hand the next SIGINT/SIGTERM to ``target.notice(signum)`` instead of raising (see the module docstring)."""
    target.pending = None
    _deferred.append(target)


def undefer(target: Any) -> None:
    if target in _deferred:
        _deferred.remove(target)


@contextmanager
def interruptible() -> Iterator[None]:
    """Within the block SIGINT and SIGTERM raise :class:`Interrupted`; the previous handlers come back after."""
    def handler(signum, frame):  # noqa: ARG001
        if _deferred and _deferred[-1].pending is None:
            _deferred[-1].notice(signum)
            return
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
