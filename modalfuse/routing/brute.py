"""The reference router: a time-expanded graph solved with networkx's Dijkstra, under the exact rules of graph.py.

Nodes are events: ("d", trip, i) a departure and ("a", trip, i) an arrival of a trip at its i-th timed stop, and
("w", stop, t) "ready to board at stop at time t", one per pickup time at that stop, chained by waiting edges.
Arrival events where drop-off is allowed link, for the stop itself and each stop within walking distance, to the
first ready node at or after arrival + walking time + the minimum change time; this is the only way to a second
ride, so at most one walk sits between two rides and every change pays the change time. A query adds a source
(the origin at the departure time, linked to the first ready node at or after departure + walk, without the
change time) and a sink (from arrivals at the destination, or within walking distance of it); the shortest path
length is arrival - departure, as every edge weighs the time it spans. RideLayeredGraph copies the graph once
per number of rides so far, for the reference Pareto set of (arrival, transfers).
"""
from __future__ import annotations

from bisect import bisect_left
from typing import Optional

from .graph import Network
from .journey import Journey, Leg


def _first_at_or_after(times: list[int], time: int) -> Optional[int]:
    k = bisect_left(times, time)
    return times[k] if k < len(times) else None


def _waits(ready: list[list[int]]):
    """(stop, t, next t) for each wait between consecutive pickup times at a stop."""
    for s, times in enumerate(ready):
        for a, b in zip(times, times[1:]):
            yield s, a, b


def _changes(net: Network, ready: list[list[int]], arrivals: list[list[tuple[int, int]]]):
    """(trip, position, stop, ready time, wait) from each alighting event to the first pickup it can make,
    at the same stop or one within walking distance, after the walk and the minimum change time."""
    c = net.options.transfer_penalty
    for s, events in enumerate(arrivals):
        reach = [(s, 0)] + [(q, w) for q, w, _ in net.walks[s]]
        for j, i in events:
            arr = net.trips[j].arrivals[i]
            for q, w in reach:
                t = _first_at_or_after(ready[q], arr + w + c)
                if t is not None:
                    yield j, i, q, t, t - arr


class TimeExpandedGraph:
    def __init__(self, net: Network) -> None:
        import networkx as nx

        self.net = net
        g = nx.DiGraph()
        ready: list[set[int]] = [set() for _ in net.stop_ids]
        self.arrivals: list[list[tuple[int, int]]] = [[] for _ in net.stop_ids]  # stop -> alighting events
        for j, t in enumerate(net.trips):
            last = len(t.stops) - 1
            for i in range(last + 1):
                s = net.index[t.stops[i]]
                if i < last:
                    g.add_edge(("d", j, i), ("a", j, i + 1), weight=t.arrivals[i + 1] - t.departures[i])
                    if t.pickup[i]:
                        ready[s].add(t.departures[i])
                        g.add_edge(("w", s, t.departures[i]), ("d", j, i), weight=0)
                if 0 < i < last:
                    g.add_edge(("a", j, i), ("d", j, i), weight=t.departures[i] - t.arrivals[i])
                if i > 0 and t.dropoff[i]:
                    self.arrivals[s].append((j, i))
        self.ready = [sorted(times) for times in ready]
        for s, a, b in _waits(self.ready):
            g.add_edge(("w", s, a), ("w", s, b), weight=b - a)
        for j, i, q, t, wait in _changes(net, self.ready, self.arrivals):
            g.add_edge(("a", j, i), ("w", q, t), weight=wait)
        self.graph = g

    def _first_ready(self, stop: int, time: int) -> Optional[int]:
        return _first_at_or_after(self.ready[stop], time)

    def search(self, origin: str, destination: str, depart: int) -> tuple[Optional[int], list]:
        """(earliest arrival or None when unreachable, the node path)."""
        import networkx as nx

        net, g = self.net, self.graph
        o, d = net.stop(origin), net.stop(destination)
        net.check_departure(depart)
        if o == d:
            return depart, []
        src, dst = ("source",), ("sink",)
        try:
            for q, w in [(o, 0)] + [(q, w) for q, w, _ in net.walks[o]]:
                t = self._first_ready(q, depart + w)
                if t is not None:
                    g.add_edge(src, ("w", q, t), weight=t - depart)
                if q == d:
                    g.add_edge(src, dst, weight=w)
            for q, w in [(d, 0)] + [(q, w) for q, w, _ in net.walks[d]]:
                for j, i in self.arrivals[q]:
                    g.add_edge(("a", j, i), dst, weight=w)
            if src not in g or dst not in g:
                return None, []
            try:
                length, path = nx.single_source_dijkstra(g, src, dst, weight="weight")
            except nx.NetworkXNoPath:
                return None, []
            return depart + int(length), path
        finally:
            for node in (src, dst):
                if node in g:
                    g.remove_node(node)

    def earliest_arrival(self, origin: str, destination: str, depart: int) -> Optional[int]:
        return self.search(origin, destination, depart)[0]

    def journey(self, origin: str, destination: str, depart: int) -> Optional[Journey]:
        """The shortest path read back as legs (rides and walks)."""
        arrival, path = self.search(origin, destination, depart)
        if arrival is None:
            return None
        net, ids = self.net, self.net.stop_ids
        o, d = net.stop(origin), net.stop(destination)
        legs: list[Leg] = []
        where, when = o, depart  # the traveller's stop and time after the last leg
        ride: Optional[list] = None  # [trip, first position, last position]
        for node in path[1:]:
            kind = node[0]
            if kind == "d":
                j, i = node[1], node[2]
                if ride is None:
                    ride = [j, i, i]
            elif kind == "a":
                ride[2] = node[2]
            else:
                if ride is not None:
                    trip = net.trips[ride[0]]
                    legs.append(Leg("ride", trip.stops[ride[1]], trip.stops[ride[2]], trip.departures[ride[1]],
                                    trip.arrivals[ride[2]], trip.trip_id, trip.route_id, trip.stops[ride[1]:ride[2] + 1]))
                    where, when, ride = net.index[trip.stops[ride[2]]], trip.arrivals[ride[2]], None
                target = d if kind == "sink" else node[1]
                if target != where:
                    m = next(m for q, _, m in net.walks[where] if q == target)
                    legs.append(Leg("walk", ids[where], ids[target], when, when + net.walk_seconds(m), metres=m))
                    where, when = target, when + net.walk_seconds(m)
        return Journey(ids[o], ids[d], depart, arrival, legs)


class RideLayeredGraph:
    """The same time-expanded graph copied once per number of rides so far (0..max_rides), for the Pareto set.

    Boarding moves from layer r to layer r + 1; the sink of layer r is reached with exactly r rides. One
    Dijkstra from the source therefore gives the earliest arrival with exactly r rides for every r, and the
    Pareto set of (arrival, transfers = rides - 1) over journeys of at most ``max_rides`` rides follows.
    """

    def __init__(self, net: Network, max_rides: int) -> None:
        import networkx as nx

        self.net, self.max_rides = net, max_rides
        ready: list[set[int]] = [set() for _ in net.stop_ids]
        self.arrivals: list[list[tuple[int, int]]] = [[] for _ in net.stop_ids]
        g = nx.DiGraph()
        for j, t in enumerate(net.trips):
            last = len(t.stops) - 1
            for i in range(last + 1):
                s = net.index[t.stops[i]]
                for r in range(1, max_rides + 1):
                    if i < last:
                        g.add_edge(("d", j, i, r), ("a", j, i + 1, r), weight=t.arrivals[i + 1] - t.departures[i])
                        if t.pickup[i]:
                            g.add_edge(("w", s, t.departures[i], r - 1), ("d", j, i, r), weight=0)
                    if 0 < i < last:
                        g.add_edge(("a", j, i, r), ("d", j, i, r), weight=t.departures[i] - t.arrivals[i])
                if i < last and t.pickup[i]:
                    ready[s].add(t.departures[i])
                if i > 0 and t.dropoff[i]:
                    self.arrivals[s].append((j, i))
        self.ready = [sorted(times) for times in ready]
        for s, a, b in _waits(self.ready):
            for r in range(max_rides):
                g.add_edge(("w", s, a, r), ("w", s, b, r), weight=b - a)
        for j, i, q, t, wait in _changes(net, self.ready, self.arrivals):
            for r in range(1, max_rides):
                g.add_edge(("a", j, i, r), ("w", q, t, r), weight=wait)
        self.graph = g

    def _first_ready(self, stop: int, time: int) -> Optional[int]:
        return _first_at_or_after(self.ready[stop], time)

    def pareto(self, origin: str, destination: str, depart: int) -> list[tuple[int, int]]:
        """[(transfers, arrival)], fewest transfers first, over journeys of at most max_rides rides."""
        import networkx as nx

        net, g = self.net, self.graph
        o, d = net.stop(origin), net.stop(destination)
        net.check_departure(depart)
        if o == d:
            return [(0, depart)]
        src, sinks = ("source",), [("sink", r) for r in range(self.max_rides + 1)]
        try:
            for q, w in [(o, 0)] + [(q, w) for q, w, _ in net.walks[o]]:
                t = self._first_ready(q, depart + w)
                if t is not None:
                    g.add_edge(src, ("w", q, t, 0), weight=t - depart)
                if q == d:
                    g.add_edge(src, sinks[0], weight=w)
            for q, w in [(d, 0)] + [(q, w) for q, w, _ in net.walks[d]]:
                for j, i in self.arrivals[q]:
                    for r in range(1, self.max_rides + 1):
                        g.add_edge(("a", j, i, r), sinks[r], weight=w)
            if src not in g:
                return []
            dist = nx.single_source_dijkstra_path_length(g, src, weight="weight")
        finally:
            for node in (src, *sinks):
                if node in g:
                    g.remove_node(node)
        front, best = [], None
        for r, sink in enumerate(sinks):
            if sink in dist and (best is None or depart + dist[sink] < best):
                best = depart + int(dist[sink])
                if front and front[-1][0] == max(0, r - 1):
                    front[-1] = (max(0, r - 1), best)  # one ride and none both count 0 transfers
                else:
                    front.append((max(0, r - 1), best))
        return front
