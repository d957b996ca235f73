"""Transit routing on a slice of the Cairns GTFS feed: RAPTOR against the networkx time-expanded reference,
the Pareto set, every journey checked leg by leg against the raw timetable, and clear errors on bad input."""
from __future__ import annotations

import math
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("partridge")
pytest.importorskip("networkx")
import pandas as pd  # noqa: E402

from modalfuse.cli import main  # noqa: E402
from modalfuse.errors import ModalfuseError  # noqa: E402
from modalfuse.routing.brute import RideLayeredGraph, TimeExpandedGraph  # noqa: E402
from modalfuse.routing.errors import FeedError, ServiceDayError, UnknownStopError  # noqa: E402
from modalfuse.routing.feed import load_timetable, parse_time  # noqa: E402
from modalfuse.routing.graph import Network, RoutingOptions  # noqa: E402
from modalfuse.routing.raptor import earliest_arrival, pareto  # noqa: E402

ROUTES = ["110-423", "111-423", "121-423", "123-423", "131-423", "150-423"]  # all meet in the city centre
WINDOW = (6 * 3600, 9 * 3600)  # trips of the slice leave their first stop in this window
MONDAY = "2014-05-26"
UNSERVED = "999001"  # a stop in stops.txt that no trip serves


def _secs(text: str) -> int:
    h, m, s = (int(x) for x in text.split(":"))
    return h * 3600 + m * 60 + s


def _read(zf: zipfile.ZipFile, name: str) -> pd.DataFrame:
    return pd.read_csv(zf.open(name), dtype=str, keep_default_na=False)


def write_feed(path: Path, tables: dict[str, pd.DataFrame], drop: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, frame in tables.items():
            if name not in drop:
                zf.writestr(name, frame.to_csv(index=False))
    return path


@pytest.fixture(scope="module")
def cairns(shared_data) -> Path:
    path = shared_data / "gtfs_cairns" / "cairns_gtfs.zip"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="module")
def tables(cairns) -> dict[str, pd.DataFrame]:
    """The slice: weekday trips of six routes leaving between 06:00 and 09:00, the stops they use, one unserved stop."""
    with zipfile.ZipFile(cairns) as zf:
        raw = {n: _read(zf, n) for n in zf.namelist()}
    trips = raw["trips.txt"]
    trips = trips[trips["route_id"].isin(ROUTES) & (trips["service_id"] == "CNS2014-CNS_MUL-Weekday-00")]
    times = raw["stop_times.txt"]
    times = times[times["trip_id"].isin(set(trips["trip_id"]))]
    first = times[times["departure_time"] != ""].groupby("trip_id")["departure_time"].min().map(_secs)
    keep = set(first[(first >= WINDOW[0]) & (first < WINDOW[1])].index)
    trips, times = trips[trips["trip_id"].isin(keep)], times[times["trip_id"].isin(keep)]
    stops = raw["stops.txt"]
    extra = stops.iloc[:1].copy().assign(stop_id=UNSERVED, stop_name="Nowhere in particular")
    stops = pd.concat([stops[stops["stop_id"].isin(set(times["stop_id"]))], extra])
    return {"agency.txt": raw["agency.txt"], "calendar.txt": raw["calendar.txt"], "calendar_dates.txt": raw["calendar_dates.txt"],
            "routes.txt": raw["routes.txt"][raw["routes.txt"]["route_id"].isin(ROUTES)],
            "trips.txt": trips, "stop_times.txt": times, "stops.txt": stops}


@pytest.fixture(scope="module")
def feed(tables, tmp_path_factory) -> Path:
    return write_feed(tmp_path_factory.mktemp("gtfs") / "slice.zip", tables)


@pytest.fixture(scope="module")
def timetable(feed):
    return load_timetable(feed, MONDAY)


@pytest.fixture(scope="module")
def networks(timetable):
    """(RAPTOR network, time-expanded reference) for a few transfer penalties."""
    out = {}
    for penalty in (0, 120, 6 * 3600):
        net = Network(timetable, RoutingOptions(transfer_penalty=penalty))
        out[penalty] = (net, TimeExpandedGraph(net))
    return out


@pytest.fixture(scope="module")
def raw(tables):
    """The slice's raw stop_times by trip (sorted by stop_sequence) and its stop coordinates, for replaying journeys."""
    by_trip: dict[str, list[tuple]] = {}
    for r in tables["stop_times.txt"].itertuples():
        by_trip.setdefault(r.trip_id, []).append((int(r.stop_sequence), r.stop_id, r.arrival_time, r.departure_time,
                                                  r.pickup_type, r.drop_off_type))
    for rows in by_trip.values():
        rows.sort()
    coords = {r.stop_id: (float(r.stop_lat), float(r.stop_lon)) for r in tables["stops.txt"].itertuples() if r.stop_lat}
    return by_trip, coords


def _haversine(a, b) -> float:
    la1, lo1, la2, lo2 = map(math.radians, (*a, *b))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


def check_journey(journey, raw, options: RoutingOptions, depart: int) -> None:
    """Replay a journey against the raw slice tables: every ride is a real trip segment with pickup and drop-off
    allowed, walks are short enough and take distance / speed, every later boarding leaves the change time."""
    by_trip, coords = raw
    where, when, rides, walked = journey.origin, depart, 0, False
    for leg in journey.legs:
        assert leg.from_stop == where and leg.depart >= when, (leg, where, when)
        if leg.kind == "walk":
            assert not walked, "two walks in a row"
            metres = _haversine(coords[leg.from_stop], coords[leg.to_stop])
            assert metres <= options.max_walk_m + 1e-6 and leg.from_stop != leg.to_stop
            assert abs((leg.arrive - leg.depart) - metres / options.walk_speed) <= 1.0
            walked = True
        else:
            rows = by_trip[leg.trip_id]
            on = [k for k, r in enumerate(rows) if r[1] == leg.from_stop and r[3] and _secs(r[3]) == leg.depart]
            assert on, f"trip {leg.trip_id} does not leave {leg.from_stop} at {leg.depart}"
            off = [k for k, r in enumerate(rows) if k > on[0] and r[1] == leg.to_stop and r[2] and _secs(r[2]) == leg.arrive]
            assert off, f"trip {leg.trip_id} does not reach {leg.to_stop} at {leg.arrive}"
            assert rows[on[0]][4] != "1" and rows[off[0]][5] != "1", "boarding or alighting where the feed forbids it"
            assert leg.depart >= when + (options.transfer_penalty if rides else 0), "change time not kept"
            rides, walked = rides + 1, False
        where, when = leg.to_stop, leg.arrive
    assert where == journey.destination and when == journey.arrival


def _queries(net, n: int, seed: int):
    rng = random.Random(seed)
    return [(*rng.sample(net.stop_ids, 2), rng.randrange(*WINDOW)) for _ in range(n)]


def test_timetable_is_the_service_day(timetable, tables) -> None:
    raw = tables["stop_times.txt"]
    assert timetable.date.isoformat() == MONDAY
    assert {t.trip_id for t in timetable.trips} == set(tables["trips.txt"]["trip_id"])
    trip = timetable.trips[0]
    rows = raw[(raw.trip_id == trip.trip_id) & (raw.departure_time != "")]
    rows = rows.assign(seq=rows.stop_sequence.astype(int)).sort_values("seq")
    assert list(trip.stops) == list(rows.stop_id)
    assert list(trip.departures) == [_secs(x) for x in rows.departure_time]
    untimed = int((raw.arrival_time == "").sum())
    assert timetable.untimed_skipped == untimed
    assert sum(len(t.stops) for t in timetable.trips) == len(raw) - untimed


def test_default_date_is_busiest_and_other_days_are_checked(feed, cairns) -> None:
    assert load_timetable(feed).date.isoformat() == MONDAY  # weekdays tie in the slice: the earliest
    assert load_timetable(cairns).date.isoformat() == "2014-05-30"  # weekday + the Friday-only trips
    with pytest.raises(ServiceDayError, match="no service on 2014-05-31"):
        load_timetable(feed, "20140531")  # a Saturday: the slice holds weekday trips only
    with pytest.raises(ServiceDayError, match=r"no service on 2015-01-01 .* from 2014-05-26 to 2014-12-24"):
        load_timetable(feed, "2015-01-01")  # the slice runs weekdays only: Christmas and Boxing Day are off
    with pytest.raises(ServiceDayError, match="expected YYYY-MM-DD"):
        load_timetable(feed, "next monday")


@pytest.mark.parametrize("penalty", [0, 120])
def test_raptor_agrees_with_time_expanded_dijkstra(networks, raw, penalty) -> None:
    net, brute = networks[penalty]
    reached = transfers = walks = 0
    for o, d, t in _queries(net, 150, seed=penalty):
        fast = earliest_arrival(net, o, d, t)
        ref = brute.journey(o, d, t)
        assert (fast.arrival if fast else None) == (ref.arrival if ref else None), (o, d, t)
        if fast:
            check_journey(fast, raw, net.options, t)
            check_journey(ref, raw, net.options, t)
            reached += 1
            transfers += fast.transfers > 0
            walks += any(leg.kind == "walk" for leg in fast.legs)
    assert reached >= 75 and transfers >= 10 and walks >= 10, (reached, transfers, walks)


def test_pareto_set(networks, raw) -> None:
    net, _ = networks[120]
    _, no_change = networks[6 * 3600]  # 6 h change time on a 4 h slice: only journeys with one ride or none
    sizes = []
    for o, d, t in _queries(net, 120, seed=7):
        front = pareto(net, o, d, t)
        sizes.append(len(front))
        for a, b in zip(front, front[1:]):
            assert a.transfers < b.transfers and a.arrival > b.arrival
        for j in front:
            check_journey(j, raw, net.options, t)
        direct = no_change.earliest_arrival(o, d, t)
        if front and front[0].transfers == 0:
            assert front[0].arrival == direct, (o, d, t)
        else:
            assert direct is None, (o, d, t)
    assert max(sizes) >= 2, "some query should trade a transfer for an earlier arrival"


def test_pareto_set_matches_ride_layered_dijkstra(networks) -> None:
    net, _ = networks[120]
    layered = RideLayeredGraph(net, max_rides=4)
    traded = 0
    for o, d, t in _queries(net, 100, seed=5):
        front = [(j.transfers, j.arrival) for j in pareto(net, o, d, t, max_rounds=4)]
        assert front == layered.pareto(o, d, t), (o, d, t)
        traded += len(front) > 1
    assert traded >= 3


def test_change_time_only_removes_connections(networks) -> None:
    loose, tight = networks[0][0], networks[120][0]
    later = 0
    for o, d, t in _queries(loose, 80, seed=3):
        a, b = earliest_arrival(loose, o, d, t), earliest_arrival(tight, o, d, t)
        if b is not None:
            assert a is not None and a.arrival <= b.arrival
            later += a.arrival < b.arrival
    assert later >= 1


def test_same_stop_and_unreachable(networks, timetable) -> None:
    net, brute = networks[120]
    stop = net.stop_ids[0]
    j = earliest_arrival(net, stop, stop, parse_time("08:00"))
    assert j.arrival == parse_time("08:00") and j.legs == []
    # after the slice's last departure, two stops further apart than a walk cannot be joined
    late = max(t.departures[-2] for t in timetable.trips) + 1
    near = {net.stop_ids[q] for q, _, _ in net.walks[0]}
    o, d = net.stop_ids[0], next(s for s in net.stop_ids[1:] if s not in near)
    assert pareto(net, o, d, late) == [] and earliest_arrival(net, o, d, late) is None
    assert brute.earliest_arrival(o, d, late) is None


def test_unknown_stops_and_times(networks) -> None:
    net, _ = networks[120]
    with pytest.raises(UnknownStopError, match=r"unknown stop id '75000x'.*did you mean"):
        earliest_arrival(net, "75000x", net.stop_ids[1], 8 * 3600)
    with pytest.raises(UnknownStopError, match="no trip serves it"):
        earliest_arrival(net, net.stop_ids[0], UNSERVED, 8 * 3600)
    with pytest.raises(ServiceDayError, match="outside the service day"):
        earliest_arrival(net, net.stop_ids[0], net.stop_ids[1], net.timetable.last_arrival + 60)
    for bad in ("8h15", "08:61", "48:00", ""):
        with pytest.raises(ServiceDayError, match="expected HH:MM"):
            parse_time(bad)
    assert parse_time("25:10:05") == 25 * 3600 + 10 * 60 + 5


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda t: t.pop("stops.txt"), "lacks stops.txt"),
        (lambda t: (t.pop("calendar.txt"), t.pop("calendar_dates.txt")), "lacks calendar.txt and calendar_dates.txt"),
        (lambda t: t.__setitem__("stop_times.txt", t["stop_times.txt"].assign(
            stop_id=lambda f: f.stop_id.where(f.index != f.index[5], "424242"))), r"stop_times.txt, row 6, column 'stop_id': stop_id '424242' is not in stops.txt"),
        (lambda t: t.__setitem__("trips.txt", t["trips.txt"].assign(
            route_id=lambda f: f.route_id.where(f.index != f.index[2], "999-423"))), r"trips.txt, row 3, column 'route_id': route_id '999-423' is not in routes.txt"),
        (lambda t: t.__setitem__("trips.txt", t["trips.txt"].assign(
            service_id=lambda f: f.service_id.where(f.index != f.index[0], "NO-SUCH-DAY"))), r"trips.txt, row 1, column 'service_id': service_id 'NO-SUCH-DAY' is not in calendar"),
        (lambda t: t.__setitem__("stop_times.txt", t["stop_times.txt"].assign(
            arrival_time=lambda f: f.arrival_time.where(f.index != f.index[3], "00:00:01"),
            departure_time=lambda f: f.departure_time.where(f.index != f.index[3], "00:00:01"))), r"times go backwards on trip '.+' at stop_sequence"),
        (lambda t: t.__setitem__("stop_times.txt", t["stop_times.txt"].drop(columns="arrival_time")), "lacks the required column"),
        (lambda t: t.__setitem__("stops.txt", t["stops.txt"].assign(stop_lat="")), "no valid coordinates"),
    ],
    ids=["missing-stops", "missing-calendar", "unknown-stop-ref", "unknown-route-ref", "unknown-service-ref", "backwards-times", "missing-column", "no-coordinates"],
)
def test_broken_feeds_are_named(tables, tmp_path, change, message) -> None:
    broken = {k: v.reset_index(drop=True) for k, v in tables.items()}
    change(broken)
    path = write_feed(tmp_path / "broken.zip", broken)
    with pytest.raises(FeedError, match=message) as info:
        load_timetable(path, MONDAY)
    assert isinstance(info.value, ModalfuseError) and "\n" not in str(info.value)


def test_not_a_feed(tmp_path) -> None:
    with pytest.raises(FeedError, match="not found"):
        load_timetable(tmp_path / "absent.zip")
    (tmp_path / "text.zip").write_text("hello")
    with pytest.raises(FeedError, match="not a zip file"):
        load_timetable(tmp_path / "text.zip")


def test_route_command(feed, networks, tmp_path, capsys) -> None:
    net, brute = networks[120]
    o, d, t, j = next((o, d, t, j) for o, d, t in _queries(net, 200, seed=11)
                      if (j := earliest_arrival(net, o, d, t)) and j.transfers >= 1)
    clock = f"{t // 3600:02d}:{t % 3600 // 60:02d}:{t % 60:02d}"
    png = tmp_path / "map" / "route.png"
    assert main(["route", str(feed), "--from", o, "--to", d, "--depart", clock, "--date", MONDAY, "--map", str(png)]) == 0
    out = capsys.readouterr().out
    expect = brute.earliest_arrival(o, d, t)
    assert f"arrive {expect // 3600:02d}:{expect % 3600 // 60:02d}:{expect % 60:02d}" in out
    assert out.count("board route") == j.rides and "alight at" in out and "Pareto set" in out
    assert f"{j.transfers} transfer" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000

    assert main(["route", str(feed), "--from", o, "--to", "nope", "--depart", clock, "--date", MONDAY]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown stop id 'nope'") and err.count("\n") == 1
    assert main(["route", str(feed), "--from", o, "--to", d, "--depart", "99:00", "--date", MONDAY]) == 2
    assert "expected HH:MM" in capsys.readouterr().err
    assert main(["route", str(feed), "--from", o, "--to", d, "--depart", "8:00", "--transfer-penalty", "-1"]) == 2
    assert capsys.readouterr().err.startswith("error: --transfer-penalty:")
    late = max(tt.departures[-2] for tt in net.timetable.trips) + 1
    far = next(s for s in net.stop_ids if s != o and s not in {net.stop_ids[q] for q, _, _ in net.walks[net.index[o]]})
    clock = f"{late // 3600:02d}:{late % 3600 // 60:02d}:{late % 60:02d}"
    assert main(["route", str(feed), "--from", o, "--to", far, "--depart", clock, "--date", MONDAY]) == 1
    assert "no journey:" in capsys.readouterr().out


def test_help_loads_no_router() -> None:
    code = ("import sys\nfrom modalfuse.cli import build_parser\nbuild_parser().format_help()\n"
            "heavy = {'partridge', 'networkx', 'pandas', 'matplotlib', 'torch'} & set(sys.modules)\n"
            "assert not heavy, sorted(heavy)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
