"""A journey as legs (ride or walk), with its arrival, transfers, and a readable itinerary."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .feed import Timetable, format_time


@dataclass(frozen=True)
class Leg:
    kind: str  # "ride" or "walk"
    from_stop: str
    to_stop: str
    depart: int
    arrive: int
    trip_id: Optional[str] = None
    route_id: Optional[str] = None
    stops: tuple[str, ...] = ()  # a ride's stops from boarding to alighting, both included
    metres: float = 0.0  # a walk's length


@dataclass
class Journey:
    origin: str
    destination: str
    depart: int  # the query's departure time
    arrival: int
    legs: list[Leg] = field(default_factory=list)

    @property
    def rides(self) -> int:
        return sum(leg.kind == "ride" for leg in self.legs)

    @property
    def transfers(self) -> int:
        return max(0, self.rides - 1)

    def to_dict(self) -> dict:
        return {"origin": self.origin, "destination": self.destination, "depart": format_time(self.depart),
                "arrival": format_time(self.arrival), "transfers": self.transfers,
                "legs": [{"kind": l.kind, "from": l.from_stop, "to": l.to_stop, "depart": format_time(l.depart),
                          "arrive": format_time(l.arrive), "trip_id": l.trip_id, "route_id": l.route_id,
                          "metres": round(l.metres, 1)} for l in self.legs]}


def _stop(tt: Timetable, sid: str) -> str:
    name = tt.stops[sid].name if sid in tt.stops else ""
    return f"{sid} {name}".strip()


def describe(journey: Journey, tt: Timetable) -> list[str]:
    """The itinerary, one line per event."""
    lines = []
    if not journey.legs:
        lines.append(f"{format_time(journey.depart)}  already at {_stop(tt, journey.destination)}")
    for leg in journey.legs:
        if leg.kind == "walk":
            lines.append(f"{format_time(leg.depart)}  walk {leg.metres:.0f} m ({(leg.arrive - leg.depart) / 60:.1f} min) "
                         f"from {_stop(tt, leg.from_stop)} to {_stop(tt, leg.to_stop)}")
        else:
            route = tt.routes.get(leg.route_id)
            label = f"route {route.short_name or route.route_id}" + (f" ({route.long_name})" if route and route.long_name else "") if route else f"route {leg.route_id}"
            trip = next((t for t in tt.trips if t.trip_id == leg.trip_id), None)
            head = f" towards {trip.headsign}" if trip and trip.headsign else ""
            lines.append(f"{format_time(leg.depart)}  board {label}{head} at {_stop(tt, leg.from_stop)} [trip {leg.trip_id}]")
            lines.append(f"{format_time(leg.arrive)}  alight at {_stop(tt, leg.to_stop)} ({len(leg.stops) - 1} stops)")
    minutes = (journey.arrival - journey.depart) / 60
    lines.append(f"arrive {format_time(journey.arrival)} ({minutes:.0f} min after {format_time(journey.depart)}), "
                 f"{journey.transfers} transfer{'s' if journey.transfers != 1 else ''}")
    return lines
