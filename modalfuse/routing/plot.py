"""A map of an itinerary over the stop coordinates (matplotlib, written to a PNG)."""
from __future__ import annotations

import math
from pathlib import Path

from .feed import Timetable, format_time
from .journey import Journey


def plot_journey(journey: Journey, tt: Timetable, path: str | Path, title: str | None = None) -> Path:
    """All stops of the day in grey, rides in their route colour along their stops, walks dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    used = {s for t in tt.trips for s in t.stops}
    lat0 = math.radians(sum(tt.stops[s].lat for s in used) / len(used))
    xy = lambda sid: (tt.stops[sid].lon * math.cos(lat0), tt.stops[sid].lat)  # noqa: E731 - equal-area-ish aspect
    fig, ax = plt.subplots(figsize=(7, 10), dpi=110)
    pts = [xy(s) for s in used]
    ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=4, color="0.75", zorder=1, label="stops")
    cycle = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4)
    taken: set[str] = set()
    for leg in journey.legs:
        if leg.kind == "ride":
            route = tt.routes.get(leg.route_id)
            color = route.color.upper() if route and route.color else ""
            if not color or color == "#FFFFFF" or color in taken:  # two rides never share a colour
                color = next(cycle)
            taken.add(color)
            line = [xy(s) for s in leg.stops]
            name = route.short_name if route and route.short_name else leg.route_id
            ax.plot([p[0] for p in line], [p[1] for p in line], "-o", color=color, lw=2.5, ms=3, zorder=3,
                    label=f"route {name} {format_time(leg.depart)[:5]}–{format_time(leg.arrive)[:5]}")
            for sid, when in ((leg.from_stop, leg.depart), (leg.to_stop, leg.arrive)):
                ax.annotate(format_time(when)[:5], xy(sid), xytext=(4, 4), textcoords="offset points", fontsize=7, zorder=6)
        else:
            a, b = xy(leg.from_stop), xy(leg.to_stop)
            ax.plot([a[0], b[0]], [a[1], b[1]], "--", color="black", lw=1.5, zorder=4, label=f"walk {leg.metres:.0f} m")
    for sid, marker, label in ((journey.origin, "o", "origin"), (journey.destination, "*", "destination")):
        x, y = xy(sid)
        ax.scatter([x], [y], s=160, marker=marker, color="crimson" if label == "destination" else "green",
                   edgecolor="black", zorder=5, label=f"{label}: {sid} {tt.stops[sid].name}")
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or f"{journey.origin} → {journey.destination}: depart {format_time(journey.depart)}, "
                 f"arrive {format_time(journey.arrival)}, {journey.transfers} transfer(s)", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.01), fontsize=7, ncol=2, frameon=False)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
