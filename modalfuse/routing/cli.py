"""``modalfuse route FEED.zip --from STOP --to STOP --depart 08:15``: a readable itinerary, the Pareto set, a map.

Only argparse is imported here, so registering the command keeps ``modalfuse --help`` light.
"""
from __future__ import annotations

import argparse


def add_route_parser(subparsers) -> argparse.ArgumentParser:
    r = subparsers.add_parser("route", help="earliest-arrival transit journey on a GTFS feed (RAPTOR; needs the routing extra)",
                              description="Earliest arrival and the (arrival, transfers) Pareto set between two stops of a "
                                          "GTFS feed. The transfer penalty is a minimum change time between two rides.")
    r.add_argument("feed", help="GTFS feed (.zip)")
    r.add_argument("--from", dest="origin", required=True, help="origin stop_id")
    r.add_argument("--to", dest="destination", required=True, help="destination stop_id")
    r.add_argument("--depart", required=True, help="departure time HH:MM[:SS] on the service day")
    r.add_argument("--date", help="service date YYYY-MM-DD or YYYYMMDD (default: the feed's busiest date)")
    r.add_argument("--transfer-penalty", type=int, default=120, help="minimum change time between rides, seconds (default 120)")
    r.add_argument("--walk-speed", type=float, default=1.25, help="walking speed, m/s (default 1.25)")
    r.add_argument("--max-walk", type=float, default=400.0, help="longest walk between two stops, metres (default 400)")
    r.add_argument("--map", help="write a PNG map of the itinerary here")
    r.set_defaults(func=cmd_route, light=True)  # the router needs neither torch nor the learning library
    return r


def cmd_route(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from ..errors import ConfigError

    for module in ("partridge", "networkx"):
        try:
            __import__(module)
        except ImportError:
            raise ConfigError(f"modalfuse route needs {module}: pip install 'modalfuse[routing]'") from None
    from .feed import format_time, load_timetable, parse_time
    from .graph import Network, RoutingOptions
    from .journey import describe
    from .raptor import pareto

    try:
        options = RoutingOptions(transfer_penalty=args.transfer_penalty, walk_speed=args.walk_speed, max_walk_m=args.max_walk)
    except ValidationError as err:
        first = err.errors()[0]
        flag = {"transfer_penalty": "--transfer-penalty", "walk_speed": "--walk-speed", "max_walk_m": "--max-walk"}[first["loc"][0]]
        raise ConfigError(f"{flag}: {first['msg']}") from None
    depart = parse_time(args.depart)
    tt = load_timetable(args.feed, args.date)
    net = Network(tt, options)
    origin, destination = net.stop(args.origin), net.stop(args.destination)
    front = pareto(net, args.origin, args.destination, depart)
    o, d = net.stop_ids[origin], net.stop_ids[destination]
    print(f"feed {args.feed}: service date {tt.date.isoformat()} ({tt.date.strftime('%A')}), {len(tt.trips)} trips")
    print(f"rules: {options.transfer_penalty} s minimum change time between rides; walks up to {options.max_walk_m:g} m "
          f"at {options.walk_speed:g} m/s")
    print(f"from {o} {tt.stops[o].name} to {d} {tt.stops[d].name}, departing {format_time(depart)}")
    if not front:
        print(f"no journey: {d} ({tt.stops[d].name}) cannot be reached from {o} ({tt.stops[o].name}) departing "
              f"{format_time(depart)} on {tt.date.isoformat()} (the day's last arrival is {format_time(tt.last_arrival)})")
        return 1
    best = front[-1]
    print("\nearliest arrival:")
    for line in describe(best, tt):
        print(f"  {line}")
    print("\nPareto set (transfers: arrival):")
    for j in front:
        print(f"  {j.transfers} transfer{'s' if j.transfers != 1 else ''}: {format_time(j.arrival)}")
    if args.map:
        from .plot import plot_journey

        print(f"\nmap written to {plot_journey(best, tt, args.map)}")
    return 0
