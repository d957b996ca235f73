"""RAPTOR against the brute-force reference on the whole Cairns feed: random (origin, destination, departure) queries.

    .venv/bin/python bench/routing.py                     # 1,000 queries, seed 0, transfer penalties 120 s and 0 s
    .venv/bin/python bench/routing.py --queries 200 --pareto-queries 0 --out /tmp/r.md

Each query is answered by RAPTOR (modalfuse.routing.raptor.pareto: the whole (arrival, transfers) Pareto set,
whose last entry is the earliest arrival) and by Dijkstra (networkx) on the time-expanded graph of
modalfuse.routing.brute, both under the same rules (graph.py: the penalty is a minimum change time). They agree
when both give the same earliest arrival time, or both say unreachable. Per-query latency is wall time
(perf_counter) of one call, after the network and the time-expanded graph are built (their build times are
reported apart); the two methods alternate which goes first. On the first --pareto-queries queries the whole
Pareto set is also checked against Dijkstra on the ride-layered graph (brute.RideLayeredGraph). Writes
docs/results/routing.md and prints it last.
"""
from __future__ import annotations

import argparse
import collections
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_DIR, command_line, default_data_dir, machine_info, publish  # noqa: E402  (sets the environment first)


def loadavg() -> str:
    from modalfuse.evaluate.benchmark import load_average

    return load_average() + " (1 / 5 / 15 min)"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def run(feed: str, date, penalty: int, n: int, seed: int, window: tuple[str, str], pareto_n: int = 0, max_rides: int = 5) -> dict:
    from modalfuse.routing.brute import TimeExpandedGraph
    from modalfuse.routing.feed import format_time, load_timetable, parse_time
    from modalfuse.routing.graph import Network, RoutingOptions
    from modalfuse.routing.raptor import pareto

    t0 = time.perf_counter()
    tt = load_timetable(feed, date)
    t1 = time.perf_counter()
    net = Network(tt, RoutingOptions(transfer_penalty=penalty))
    t2 = time.perf_counter()
    brute = TimeExpandedGraph(net)
    t3 = time.perf_counter()
    rng = random.Random(seed)
    lo, hi = parse_time(window[0]), parse_time(window[1])
    queries = [(*rng.sample(net.stop_ids, 2), rng.randrange(lo, hi)) for _ in range(n)]
    fast_ms, slow_ms, fast_cpu, slow_cpu, disagree = [], [], [], [], []
    reached, transfers, front_sizes = 0, collections.Counter(), collections.Counter()
    for k, (o, d, t) in enumerate(queries):
        for first in ((0, 1) if k % 2 == 0 else (1, 0)):
            s, c = time.perf_counter(), time.process_time()
            if first == 0:
                front = pareto(net, o, d, t)
                fast_ms.append((time.perf_counter() - s) * 1000)
                fast_cpu.append((time.process_time() - c) * 1000)
            else:
                ref = brute.earliest_arrival(o, d, t)
                slow_ms.append((time.perf_counter() - s) * 1000)
                slow_cpu.append((time.process_time() - c) * 1000)
        got = front[-1].arrival if front else None
        if got != ref:
            disagree.append(f"{o} → {d} at {format_time(t)}: RAPTOR {format_time(got) if got else 'unreachable'}, "
                            f"Dijkstra {format_time(ref) if ref else 'unreachable'}")
        if front:
            reached += 1
            transfers[front[-1].transfers] += 1
            front_sizes[len(front)] += 1
    pareto_check = None
    if pareto_n:
        from modalfuse.routing.brute import RideLayeredGraph

        s = time.perf_counter()
        layered = RideLayeredGraph(net, max_rides)
        build = time.perf_counter() - s
        same, ms, differ = 0, [], []
        for o, d, t in queries[:pareto_n]:
            mine = [(j.transfers, j.arrival) for j in pareto(net, o, d, t, max_rounds=max_rides)]
            s = time.perf_counter()
            ref = layered.pareto(o, d, t)
            ms.append((time.perf_counter() - s) * 1000)
            same += mine == ref
            if mine != ref:
                differ.append(f"{o} → {d} at {format_time(t)}: RAPTOR {mine}, layered Dijkstra {ref}")
        pareto_check = {"n": pareto_n, "same": same, "ms": ms, "differ": differ, "build_s": build,
                        "nodes": layered.graph.number_of_nodes(), "edges": layered.graph.number_of_edges()}
        del layered
    return {"tt": tt, "net": net, "brute": brute, "penalty": penalty, "n": n, "load_s": t1 - t0, "net_s": t2 - t1,
            "pareto": pareto_check, "max_rides": max_rides,
            "brute_s": t3 - t2, "fast": fast_ms, "slow": slow_ms, "fast_cpu": fast_cpu, "slow_cpu": slow_cpu, "disagree": disagree, "reached": reached,
            "transfers": transfers, "fronts": front_sizes, "window": (format_time(lo), format_time(hi))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--feed", default=str(Path(default_data_dir()) / "gtfs_cairns" / "cairns_gtfs.zip"))
    p.add_argument("--date", default=None, help="service date (default: the feed's busiest)")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--window", default="06:00-21:00", help="departure times are drawn uniformly in [start, end) (default 06:00-21:00)")
    p.add_argument("--penalties", default="120,0", help="transfer penalties (minimum change times, s) to run, comma-separated")
    p.add_argument("--pareto-queries", type=int, default=200,
                   help="check the whole Pareto set on the first N queries (ride-layered Dijkstra, about 1 s each; first penalty only)")
    p.add_argument("--max-rides", type=int, default=5, help="rides per journey in the Pareto check (default 5)")
    p.add_argument("--out", default=str(RESULTS_DIR / "routing.md"))
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    start_load, started = loadavg(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    window = tuple(args.window.split("-", 1))
    runs = [run(args.feed, args.date, int(x), args.queries, args.seed, window, args.pareto_queries if k == 0 else 0, args.max_rides)
            for k, x in enumerate(args.penalties.split(","))]
    end_load = loadavg()
    from modalfuse.routing.feed import format_time

    tt, net, brute = runs[0]["tt"], runs[0]["net"], runs[0]["brute"]
    info = machine_info(1)
    g = brute.graph
    lines = [
        "# Transit routing: RAPTOR vs a brute-force time-expanded graph (Cairns GTFS)", "",
        f"- date: {started}",
        f"- machine: {info['cores']} cores ({info['cpu']}), Python {info['python']}, torch {info['torch']} (not used here), {info['platform']}",
        f"- load average at start: {start_load}; at end: {end_load}",
        f"- command: `{command_line()}`",
        f"- feed: `{Path(args.feed).name}`, service date {tt.date.isoformat()} ({tt.date.strftime('%A')}): {len(tt.trips)} trips, "
        f"{len(net.stop_ids)} served stops, {len(net.patterns)} patterns (one stop sequence, no overtaking), "
        f"{sum(map(len, net.walks)) // 2} walking links (≤ {net.options.max_walk_m:g} m at {net.options.walk_speed:g} m/s), "
        f"{tt.untimed_skipped} untimed stop_times rows left out",
        f"- reference graph: {g.number_of_nodes():,} nodes, {g.number_of_edges():,} edges (networkx DiGraph, `single_source_dijkstra` to a sink)",
        f"- queries: {args.queries} per penalty, seed {args.seed}; origin and destination two distinct served stops drawn uniformly, "
        f"departure uniform in [{runs[0]['window'][0]}, {runs[0]['window'][1]}); the same queries for every penalty; "
        f"the day's trips run {format_time(tt.first_departure)}–{format_time(tt.last_arrival)}",
        "- earliest arrival: the smallest clock time at the destination; the transfer penalty is a minimum change time "
        "(every boarding after the first ride needs alight + walk + penalty ≤ departure), at most one walk between rides; "
        "both methods use exactly these rules (modalfuse/routing/graph.py)",
        "- latency: wall time (perf_counter) of one query in this process, after building, and its CPU time (process_time, "
        "less sensitive to the other sessions' load); RAPTOR computes the whole Pareto set of (arrival, transfers), "
        "Dijkstra only the earliest arrival", "",
        "| transfer penalty | agree | reachable | RAPTOR median ms | RAPTOR p99 ms | Dijkstra median ms | Dijkstra p99 ms | median speed-up | RAPTOR CPU median ms | Dijkstra CPU median ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        fm, sm = statistics.median(r["fast"]), statistics.median(r["slow"])
        lines.append(f"| {r['penalty']} s | {r['n'] - len(r['disagree'])} / {r['n']} | {r['reached']} | {fm:.2f} | "
                     f"{percentile(r['fast'], 99):.2f} | {sm:.2f} | {percentile(r['slow'], 99):.2f} | {sm / fm:.1f}× | "
                     f"{statistics.median(r['fast_cpu']):.2f} | {statistics.median(r['slow_cpu']):.2f} |")
    lines += ["", "Build times (once per feed and penalty): "
              + "; ".join(f"penalty {r['penalty']} s: read feed {r['load_s']:.2f} s, network {r['net_s'] * 1000:.0f} ms, "
                          f"time-expanded graph {r['brute_s']:.2f} s" for r in runs), ""]
    for r in runs:
        dist = ", ".join(f"{k}: {v}" for k, v in sorted(r["transfers"].items()))
        fronts = ", ".join(f"{k}: {v}" for k, v in sorted(r["fronts"].items()))
        lines.append(f"- penalty {r['penalty']} s: transfers of the earliest journey ({dist}); Pareto set sizes ({fronts})")
    for r in runs:
        pc = r["pareto"]
        if pc:
            lines += ["", f"Pareto set check (penalty {r['penalty']} s, the first {pc['n']} queries, journeys of at most "
                      f"{r['max_rides']} rides): RAPTOR's set of (transfers, arrival) equals that of Dijkstra on the "
                      f"ride-layered time-expanded graph ({pc['nodes']:,} nodes, {pc['edges']:,} edges, built in "
                      f"{pc['build_s']:.1f} s) for **{pc['same']} / {pc['n']}** queries; one layered Dijkstra (the whole "
                      f"graph, every ride count) takes median {statistics.median(pc['ms']):.0f} ms, p99 {percentile(pc['ms'], 99):.0f} ms."]
            if pc["differ"]:
                lines += [""] + [f"- {x}" for x in pc["differ"][:10]]
    for r in runs:
        if r["disagree"]:
            lines += ["", f"Disagreements at penalty {r['penalty']} s (first 10):", ""] + [f"- {x}" for x in r["disagree"][:10]]
    publish(lines, args.out)


if __name__ == "__main__":
    main()
