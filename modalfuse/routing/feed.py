"""Read one service day of a GTFS feed (with partridge) into a plain, checked timetable.

Partridge selects the trips whose service runs on the date (calendar.txt plus calendar_dates.txt exceptions).
Before that, the raw files are checked: required files and columns present, every stop_times row pointing at a
known trip and stop, every trip at a known route and service. Errors name the file, the row (1-based data row, the header
not counted) and the field. Stops of a trip without times (GTFS non-timepoints) are left out of that trip: the
router neither boards nor alights there, rather than inventing interpolated times.
"""
from __future__ import annotations

import datetime as dt
import io
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import FeedError, ServiceDayError

REQUIRED = {
    "stops.txt": ("stop_id", "stop_lat", "stop_lon"),
    "routes.txt": ("route_id",),
    "trips.txt": ("route_id", "service_id", "trip_id"),
    "stop_times.txt": ("trip_id", "arrival_time", "departure_time", "stop_id", "stop_sequence"),
}
CALENDARS = ("calendar.txt", "calendar_dates.txt")


@dataclass(frozen=True)
class Stop:
    stop_id: str
    name: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Route:
    route_id: str
    short_name: str
    long_name: str
    color: str  # "#RRGGBB", or "" when the feed gives none


@dataclass(frozen=True)
class Trip:
    """One vehicle run on the service day: its timed stops in order, times in seconds after midnight."""

    trip_id: str
    route_id: str
    headsign: str
    stops: tuple[str, ...]
    arrivals: tuple[int, ...]
    departures: tuple[int, ...]
    pickup: tuple[bool, ...]  # boarding allowed here (pickup_type != 1)
    dropoff: tuple[bool, ...]  # alighting allowed here (drop_off_type != 1)


@dataclass
class Timetable:
    """The trips of one service day, with the stops and routes they use."""

    path: str
    date: dt.date
    service_ids: frozenset[str]
    stops: dict[str, Stop]
    routes: dict[str, Route]
    trips: list[Trip]
    untimed_skipped: int = 0
    dates: list[dt.date] = field(default_factory=list)  # every date with service, for messages
    listed_stops: frozenset[str] = frozenset()  # every stop_id of stops.txt, served on the date or not

    @property
    def first_departure(self) -> int:
        return min(t.departures[0] for t in self.trips)

    @property
    def last_arrival(self) -> int:
        return max(t.arrivals[-1] for t in self.trips)


def parse_date(text: str) -> dt.date:
    """``YYYY-MM-DD`` or ``YYYYMMDD``."""
    m = re.fullmatch(r"(\d{4})-?(\d{2})-?(\d{2})", str(text).strip())
    if not m:
        raise ServiceDayError(f"--date {text!r}: expected YYYY-MM-DD or YYYYMMDD")
    try:
        return dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError as err:
        raise ServiceDayError(f"--date {text!r}: {err}") from None


def parse_time(text: str) -> int:
    """``HH:MM`` or ``HH:MM:SS`` (hours up to 47, as GTFS allows past midnight) → seconds after midnight."""
    m = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", str(text).strip())
    if not m or int(m[2]) > 59 or int(m[3] or 0) > 59 or int(m[1]) > 47:
        raise ServiceDayError(f"time {text!r}: expected HH:MM or HH:MM:SS (hours 0–47, GTFS service-day time)")
    return int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3] or 0)


def format_time(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _raw(zf: zipfile.ZipFile, path: str, name: str, columns: tuple[str, ...]):
    """Read ``columns`` of one feed file as strings, checking the file and the columns exist."""
    import pandas as pd

    try:
        with zf.open(name) as fh:
            frame = pd.read_csv(io.TextIOWrapper(fh, encoding="utf-8-sig"), dtype=str, keep_default_na=False)
    except Exception as err:  # noqa: BLE001 - any parse failure is a broken file
        raise FeedError(f"cannot read {name} ({err})", table=path) from None
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise FeedError(f"{name} lacks the required column(s) {missing}", table=path)
    return frame


def _check_refs(path: str, zf: zipfile.ZipFile) -> frozenset[str]:
    """Every stop_times row names a known trip and stop, every trip a known route; ids are non-empty."""
    stops = _raw(zf, path, "stops.txt", REQUIRED["stops.txt"])
    routes = _raw(zf, path, "routes.txt", REQUIRED["routes.txt"])
    trips = _raw(zf, path, "trips.txt", REQUIRED["trips.txt"])
    times = _raw(zf, path, "stop_times.txt", REQUIRED["stop_times.txt"])
    for name, frame, key in (("stops.txt", stops, "stop_id"), ("routes.txt", routes, "route_id"), ("trips.txt", trips, "trip_id")):
        blank = frame.index[frame[key].str.strip() == ""]
        if len(blank):
            raise FeedError(f"empty {key}", table=f"{path}:{name}", row=int(blank[0]) + 1, column=key)
        dup = frame.index[frame[key].duplicated()]
        if len(dup):
            raise FeedError(f"duplicate {key} {frame[key][dup[0]]!r}", table=f"{path}:{name}", row=int(dup[0]) + 1, column=key)
    services: set[str] = set()
    for name in CALENDARS:
        if name in zf.namelist():
            services |= set(_raw(zf, path, name, ("service_id",))["service_id"])
    checks = (
        ("trips.txt", trips, "route_id", set(routes["route_id"]), "routes.txt"),
        ("trips.txt", trips, "service_id", services, "calendar.txt or calendar_dates.txt"),
        ("stop_times.txt", times, "trip_id", set(trips["trip_id"]), "trips.txt"),
        ("stop_times.txt", times, "stop_id", set(stops["stop_id"]), "stops.txt"),
    )
    for name, frame, column, known, target in checks:
        bad = frame.index[~frame[column].isin(known)]
        if len(bad):
            row = int(bad[0])
            raise FeedError(f"{column} {frame[column][row]!r} is not in {target} ({len(bad)} such rows)",
                            table=f"{path}:{name}", row=row + 1, column=column)
    return frozenset(stops["stop_id"])


def service_dates(path: str | Path) -> dict[dt.date, frozenset[str]]:
    """Every date with service → the service ids running that day (calendar plus exceptions)."""
    import partridge as ptg

    return dict(ptg.read_service_ids_by_date(str(path)))


def load_timetable(path: str | Path, date: str | dt.date | None = None) -> Timetable:
    """The checked timetable of ``date`` (default: the feed's busiest date, the earliest of ties)."""
    import pandas as pd
    import partridge as ptg

    path = str(path)
    if not Path(path).is_file():
        raise FeedError("GTFS feed not found (give a .zip file)", table=path)
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise FeedError("not a zip file (a GTFS feed is a .zip of .txt tables)", table=path) from None
    with zf:
        names = {Path(n).name: n for n in zf.namelist()}
        missing = [n for n in REQUIRED if n not in names]
        if missing:
            raise FeedError(f"the feed lacks {', '.join(missing)}", table=path)
        if not any(n in names for n in CALENDARS):
            raise FeedError("the feed lacks calendar.txt and calendar_dates.txt (one is needed for the service day)", table=path)
        if any(names[n] != n for n in REQUIRED):
            raise FeedError("feed files must sit at the top of the zip, not in a folder", table=path)
        listed = _check_refs(path, zf)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            by_date = service_dates(path)
    except Exception as err:  # noqa: BLE001
        raise FeedError(f"cannot read the calendar ({err})", table=path) from None
    if not by_date:
        raise FeedError("calendar.txt / calendar_dates.txt give no date with service", table=path)
    dates = sorted(by_date)
    if date is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            day, _ = ptg.read_busiest_date(path)  # the earliest of the dates with the most trips
    else:
        day = parse_date(date) if not isinstance(date, dt.date) else date
    services = by_date.get(day)
    if not services:
        raise ServiceDayError(f"no service on {day.isoformat()} in {path} (service runs on dates from {dates[0].isoformat()} to {dates[-1].isoformat()})")
    try:
        with warnings.catch_warnings():  # partridge's own pandas deprecations, not the user's to fix
            warnings.simplefilter("ignore")
            feed = ptg.load_feed(path, view={"trips.txt": {"service_id": services}})
            stops_f, routes_f, trips_f, times_f = feed.stops, feed.routes, feed.trips, feed.stop_times
    except Exception as err:  # noqa: BLE001
        raise FeedError(f"partridge cannot read the feed ({err})", table=path) from None

    used = set(times_f["stop_id"])
    stops: dict[str, Stop] = {}
    for i, row in enumerate(stops_f.itertuples(index=False)):
        lat, lon = getattr(row, "stop_lat"), getattr(row, "stop_lon")
        if row.stop_id in used and not (pd.notna(lat) and pd.notna(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
            raise FeedError(f"stop {row.stop_id!r} has no valid coordinates ({lat}, {lon})", table=f"{path}:stops.txt", column="stop_lat")
        name = getattr(row, "stop_name", "") if "stop_name" in stops_f.columns else ""
        stops[row.stop_id] = Stop(row.stop_id, "" if pd.isna(name) else str(name), float(lat), float(lon))
    routes: dict[str, Route] = {}
    for row in routes_f.to_dict("records"):
        color = str(row.get("route_color") or "").strip()
        routes[row["route_id"]] = Route(row["route_id"], str(row.get("route_short_name") or "").strip(),
                                        str(row.get("route_long_name") or "").strip(),
                                        f"#{color}" if re.fullmatch(r"[0-9A-Fa-f]{6}", color) else "")
    headsigns = dict(zip(trips_f["trip_id"], trips_f["trip_headsign"].fillna("") if "trip_headsign" in trips_f else [""] * len(trips_f)))
    route_of = dict(zip(trips_f["trip_id"], trips_f["route_id"]))

    times = times_f.copy()
    for col in ("pickup_type", "drop_off_type"):
        times[col] = pd.to_numeric(times[col], errors="coerce").fillna(0).astype(int) if col in times else 0
    times = times.sort_values(["trip_id", "stop_sequence"], kind="stable")
    untimed = 0
    trips: list[Trip] = []
    for trip_id, group in times.groupby("trip_id", sort=True):
        arr, dep = group["arrival_time"].to_numpy(), group["departure_time"].to_numpy()
        arr = [a if pd.notna(a) else d for a, d in zip(arr, dep)]
        dep = [d if pd.notna(d) else a for a, d in zip(arr, dep)]
        keep = [pd.notna(a) for a in arr]
        untimed += keep.count(False)
        seq = group["stop_sequence"].tolist()
        rows = [i for i, k in enumerate(keep) if k]
        if len(rows) < 2:
            continue
        a = [int(arr[i]) for i in rows]
        d = [int(dep[i]) for i in rows]
        for j in range(len(rows)):
            if a[j] > d[j] or (j and d[j - 1] > a[j]):
                raise FeedError(f"times go backwards on trip {trip_id!r} at stop_sequence {seq[rows[j]]}",
                                table=f"{path}:stop_times.txt", column="arrival_time")
        sids = group["stop_id"].tolist()
        pick, drop = group["pickup_type"].tolist(), group["drop_off_type"].tolist()
        trips.append(Trip(str(trip_id), str(route_of[trip_id]), str(headsigns.get(trip_id, "")),
                          tuple(sids[i] for i in rows), tuple(a), tuple(d),
                          tuple(pick[i] != 1 for i in rows), tuple(drop[i] != 1 for i in rows)))
    if not trips:
        raise ServiceDayError(f"no trip with two timed stops runs on {day.isoformat()} in {path}")
    return Timetable(path, day, frozenset(services), stops, routes, trips, untimed, dates, listed)
