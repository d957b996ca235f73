"""Routing errors: each names what to fix, and each is a ModalfuseError, so the CLI prints one line and exits 2."""
from __future__ import annotations

from ..errors import DataError, ModalfuseError


class RoutingError(ModalfuseError):
    """A routing query cannot be answered as asked (unknown stop, time or date outside the feed's service)."""


class FeedError(DataError):
    """A GTFS feed is unreadable, lacks a required file, or holds a broken reference (names file, row and field)."""


class UnknownStopError(RoutingError):
    """A stop id that is not in the feed's stops.txt."""


class ServiceDayError(RoutingError):
    """A date without service in the feed, or a time that is malformed or outside the service day."""
