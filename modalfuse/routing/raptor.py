"""RAPTOR (Delling, Pajor, Werneck 2012) over the (stop, mode) network: round k scans the patterns at the
stops improved in round k-1, so its labels are the earliest arrivals with exactly k rides. That gives both the
earliest arrival and the Pareto set of (arrival time, transfers).

Semantics (see graph.py): the transfer penalty is a minimum change time added to the ready time of every
boarding after the first ride; at most one walk sits between two rides. Labels therefore come in kinds: round 0
(the origin and the walks from it, boarded without the change time), arrivals by vehicle (which may still walk
on) and arrivals on foot after a ride (which may only board or end the journey).
"""
from __future__ import annotations

from bisect import bisect_left
from typing import Optional

from .graph import Network
from .journey import Journey, Leg

INF = float("inf")


def _search(net: Network, o: int, d: int, depart: int, max_rounds: Optional[int]):
    """Per-round labels: any[k][stop] = (time, kind, info); veh[k][stop] = (time, pattern, trip, board, alight)."""
    c = net.options.transfer_penalty
    n = len(net.stop_ids)
    best_veh = [INF] * n  # best arrival by vehicle (such a label may walk on)
    best_any = [INF] * n  # best label of any kind (for boarding or ending there)
    r0 = {o: (depart, "origin", None)}
    for q, w, m in net.walks[o]:
        r0[q] = (depart + w, "walk0", (o, w, m))
    for s, lab in r0.items():
        best_any[s] = lab[0]
    any_rounds, veh_rounds = [r0], [{}]
    marked, k = r0, 0
    while marked and (max_rounds is None or k < max_rounds):
        k += 1
        extra = 0 if k == 1 else c
        ready = {s: lab[0] + extra for s, lab in marked.items()}
        queue: dict[int, int] = {}
        for s in ready:
            for pk, i in net.stop_patterns[s]:
                if queue.get(pk, len(net.patterns[pk].stops)) > i:
                    queue[pk] = i
        veh: dict[int, tuple] = {}
        bound = best_any[d]  # no label at or after the best arrival at d can lead to a better one
        for pk, start in queue.items():
            pat = net.patterns[pk]
            ntrips = len(pat.trips)
            trip, board = -1, -1
            for i in range(start, len(pat.stops)):
                p = pat.stops[i]
                if trip >= 0 and pat.drop[i][trip]:
                    a = pat.arr[i][trip]
                    if a < best_veh[p] and a < bound:
                        best_veh[p] = a
                        veh[p] = (a, pk, trip, board, i)
                        if p == d:
                            bound = a
                r = ready.get(p)
                if r is not None and (trip < 0 or r <= pat.dep[i][trip]):
                    j = bisect_left(pat.dep[i], r)
                    pick = pat.pick[i]
                    while j < ntrips and not pick[j]:
                        j += 1
                    if j < ntrips and (trip < 0 or j < trip):
                        trip, board = j, i
        new: dict[int, tuple] = {}
        for p, lab in veh.items():
            if lab[0] < best_any[p]:
                best_any[p] = lab[0]
                new[p] = (lab[0], "veh", None)
        for p, lab in veh.items():
            for q, w, m in net.walks[p]:
                t = lab[0] + w
                if t < best_any[q] and t < best_any[d]:
                    best_any[q] = t
                    new[q] = (t, "walk", (p, w, m))
        any_rounds.append(new)
        veh_rounds.append(veh)
        marked = {s: lab for s, lab in new.items() if s != d}
    return any_rounds, veh_rounds


def _legs(net: Network, any_rounds, veh_rounds, k: int, s: int, depart: int) -> list[Leg]:
    t, kind, info = any_rounds[k][s]
    ids = net.stop_ids
    if kind == "origin":
        return []
    if kind == "walk0":
        p, w, m = info
        return [Leg("walk", ids[p], ids[s], depart, depart + w, metres=m)]
    if kind == "walk":
        p, w, m = info
        a = veh_rounds[k][p][0]
        return _ride(net, any_rounds, veh_rounds, k, p, depart) + [Leg("walk", ids[p], ids[s], a, a + w, metres=m)]
    return _ride(net, any_rounds, veh_rounds, k, s, depart)


def _ride(net: Network, any_rounds, veh_rounds, k: int, p: int, depart: int) -> list[Leg]:
    a, pk, j, b, i = veh_rounds[k][p]
    pat = net.patterns[pk]
    trip = net.trips[pat.trips[j]]
    ids = net.stop_ids
    before = _legs(net, any_rounds, veh_rounds, k - 1, pat.stops[b], depart)
    return before + [Leg("ride", ids[pat.stops[b]], ids[p], pat.dep[b][j], a, trip.trip_id, trip.route_id,
                         tuple(ids[x] for x in pat.stops[b:i + 1]))]


def pareto(net: Network, origin: str, destination: str, depart: int, max_rounds: Optional[int] = None) -> list[Journey]:
    """The journeys that are Pareto-optimal in (arrival time, transfers), fewest transfers first; [] if unreachable."""
    o, d = net.stop(origin), net.stop(destination)
    net.check_departure(depart)
    if o == d:
        return [Journey(net.stop_ids[o], net.stop_ids[d], depart, depart, [])]
    any_rounds, veh_rounds = _search(net, o, d, depart, max_rounds)
    found: dict[int, Journey] = {}
    for k, labels in enumerate(any_rounds):
        if d in labels:
            legs = _legs(net, any_rounds, veh_rounds, k, d, depart)
            j = Journey(net.stop_ids[o], net.stop_ids[d], depart, labels[d][0], legs)
            if j.transfers not in found or j.arrival < found[j.transfers].arrival:
                found[j.transfers] = j
    out, best = [], INF
    for tr in sorted(found):
        if found[tr].arrival < best:
            out.append(found[tr])
            best = found[tr].arrival
    return out


def earliest_arrival(net: Network, origin: str, destination: str, depart: int) -> Optional[Journey]:
    """The earliest-arriving journey (the fewest transfers among those), or None when the destination is unreachable."""
    front = pareto(net, origin, destination, depart)
    return front[-1] if front else None
