"""The layered (stop, mode) network that both routers search, and the rules of a journey.

A traveller is always in one state (stop, mode): mode is *on trip T* (riding a trip of a route: the
vehicle layer), *walking* (the foot layer), or *waiting* at the stop (the stop layer). The moves are

- ride:  (s_i, T) -> (s_i+1, T), taking the timetable time between them;
- alight: (s, T) -> (s, wait) where drop-off is allowed;
- walk:  (s, wait) -> (s', wait) for two stops at most ``max_walk_m`` apart (great-circle distance of their
  coordinates), taking ceil(distance / ``walk_speed``) seconds; at most one walk between two rides, one
  before the first ride and one after the last;
- board: (s, wait) -> (s, T) at T's departure from s where pickup is allowed; waiting is free.

**Earliest arrival with a transfer penalty** (the objective both routers use): the penalty ``c`` is a
minimum change time. Every boarding after the first ride needs the traveller ready at the stop ``c``
seconds before the departure: alight time (+ walking time) + c <= departure. The first boarding needs
only origin departure time (+ walk) <= departure. The answer is the smallest clock time at which the
destination stop is reached (by alighting there, or walking there); the penalty never adds to the
reported arrival, it removes connections that are too tight. Transfers = rides - 1 (0 for a walk only).

This module holds the static part: stop indices, walking links, and trips grouped into patterns (the
same stop sequence, no overtaking), the unit RAPTOR scans.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from .feed import Timetable

EARTH_RADIUS_M = 6_371_008.8


class RoutingOptions(BaseModel):
    """How a journey may be made: minimum change time and the walking rules."""

    model_config = ConfigDict(extra="forbid")
    transfer_penalty: int = Field(120, ge=0, le=6 * 3600, description="minimum change time between two rides, seconds")
    walk_speed: float = Field(1.25, gt=0, le=5, description="walking speed, metres per second")
    max_walk_m: float = Field(400.0, ge=0, le=5000, description="longest walk between two stops, metres")


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass
class Pattern:
    """Trips with one stop sequence, ordered so that no trip overtakes another (FIFO at every stop)."""

    route_id: str
    stops: list[int]
    trips: list[int] = field(default_factory=list)  # indices into Network.trips
    dep: list[list[int]] = field(default_factory=list)  # dep[i][j]: departure of trip j at position i
    arr: list[list[int]] = field(default_factory=list)
    pick: list[list[bool]] = field(default_factory=list)
    drop: list[list[bool]] = field(default_factory=list)


class Network:
    """Stops by index, walking links, patterns; built once per (timetable, options)."""

    def __init__(self, timetable: Timetable, options: RoutingOptions | None = None) -> None:
        self.timetable = timetable
        self.options = options or RoutingOptions()
        self.trips = timetable.trips
        used = sorted({s for t in self.trips for s in t.stops})
        self.stop_ids: list[str] = used
        self.index: dict[str, int] = {s: i for i, s in enumerate(used)}
        self.coords = [(timetable.stops[s].lat, timetable.stops[s].lon) for s in used]
        self.walks: list[list[tuple[int, int, float]]] = self._walks()
        self.patterns: list[Pattern] = self._patterns()
        self.stop_patterns: list[list[tuple[int, int]]] = [[] for _ in used]  # stop -> [(pattern, position)]
        for k, pat in enumerate(self.patterns):
            for i, s in enumerate(pat.stops):
                self.stop_patterns[s].append((k, i))

    def walk_seconds(self, metres: float) -> int:
        return math.ceil(metres / self.options.walk_speed)

    def _walks(self) -> list[list[tuple[int, int, float]]]:
        """stop -> [(other stop, walking seconds, metres)] within max_walk_m, the stop itself excluded."""
        n, limit = len(self.stop_ids), self.options.max_walk_m
        out: list[list[tuple[int, int, float]]] = [[] for _ in range(n)]
        if limit <= 0:
            return out
        order = sorted(range(n), key=lambda i: self.coords[i][0])
        dlat = math.degrees(limit / EARTH_RADIUS_M)
        for a_pos, a in enumerate(order):
            lat_a, lon_a = self.coords[a]
            for b in order[a_pos + 1:]:
                lat_b, lon_b = self.coords[b]
                if lat_b - lat_a > dlat:
                    break
                d = haversine_m(lat_a, lon_a, lat_b, lon_b)
                if d <= limit:
                    secs = self.walk_seconds(d)
                    out[a].append((b, secs, d))
                    out[b].append((a, secs, d))
        for links in out:
            links.sort()
        return out

    def _patterns(self) -> list[Pattern]:
        groups: dict[tuple[str, tuple[str, ...]], list[int]] = {}
        for j, t in enumerate(self.trips):
            groups.setdefault((t.route_id, t.stops), []).append(j)
        patterns: list[Pattern] = []
        for (route_id, stops), members in sorted(groups.items()):
            members.sort(key=lambda j: (self.trips[j].departures[0], self.trips[j].arrivals[-1], self.trips[j].trip_id))
            lanes: list[Pattern] = []  # a trip that would overtake every lane starts a new one
            for j in members:
                t = self.trips[j]
                for lane in lanes:
                    last = self.trips[lane.trips[-1]]
                    if all(a <= b for a, b in zip(last.departures, t.departures)) and all(a <= b for a, b in zip(last.arrivals, t.arrivals)):
                        break
                else:
                    lane = Pattern(route_id, [self.index[s] for s in stops])
                    lanes.append(lane)
                lane.trips.append(j)
            patterns.extend(lanes)
        for pat in patterns:
            ts = [self.trips[j] for j in pat.trips]
            pat.dep = [[t.departures[i] for t in ts] for i in range(len(pat.stops))]
            pat.arr = [[t.arrivals[i] for t in ts] for i in range(len(pat.stops))]
            pat.pick = [[t.pickup[i] for t in ts] for i in range(len(pat.stops))]
            pat.drop = [[t.dropoff[i] for t in ts] for i in range(len(pat.stops))]
        return patterns

    def stop(self, stop_id: str) -> int:
        """The index of a stop id, or a clear error (with near matches) when the feed lacks it."""
        from .errors import UnknownStopError

        sid = str(stop_id).strip()
        if sid in self.index:
            return self.index[sid]
        if sid in self.timetable.listed_stops or sid in self.timetable.stops:
            raise UnknownStopError(f"stop {sid!r} is in stops.txt but no trip serves it on {self.timetable.date.isoformat()}")
        import difflib

        names = {f"{s} ({self.timetable.stops[s].name})": s for s in self.stop_ids}
        close = difflib.get_close_matches(sid, list(self.stop_ids), n=3) or [
            names[k] for k in difflib.get_close_matches(sid, list(names), n=3, cutoff=0.3)]
        hint = f"; did you mean {', '.join(f'{s} ({self.timetable.stops[s].name})' for s in close)}?" if close else ""
        raise UnknownStopError(f"unknown stop id {sid!r}: not in {self.timetable.path} stops.txt{hint}")

    def check_departure(self, depart: int) -> None:
        """A departure must fall within the service day: 00:00 up to the last arrival of the day's trips."""
        from .errors import ServiceDayError
        from .feed import format_time

        end = self.timetable.last_arrival
        if not 0 <= depart <= end:
            raise ServiceDayError(f"departure {format_time(max(depart, 0))} is outside the service day of "
                                  f"{self.timetable.date.isoformat()} (00:00:00 to {format_time(end)}, the last arrival)")
