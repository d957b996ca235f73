"""CPU thread defaults that degrade gracefully on a shared machine.

torch's default is one intra-op thread per core. On a machine where other processes keep cores busy, a parallel
region waits for its slowest thread, which waits for a core it does not get, while the others spin: two threads
on two cores shared with one CPU-bound process run slower than one thread on the free core. So, unless
``train.threads`` says otherwise, training uses as many threads as cores are free now (never more than torch's
current setting): the cores this process may run on (``os.sched_getaffinity``) minus the CPU time other processes
used in a short sample (``/proc/stat`` less the time of this process and its live children), at least one. The count is chosen once per
fit and the previous one restored after it (a resumed run reuses the count of the checkpoint it continues).

Idle threads should sleep rather than spin (``OMP_WAIT_POLICY=PASSIVE``), which OpenMP reads only when torch is
first imported: the command line sets it before importing torch (:func:`prefer_passive_waiting`).
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Iterator, Optional


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _busy_and_own() -> Optional[tuple[float, float]]:
    """(busy CPU seconds of the whole machine, CPU seconds of this process) so far; None where /proc is missing."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
        own = os.times()
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = (sum(fields[:8]) - idle) / hz
    return busy, own.user + own.system + _children_seconds()


def _children_seconds() -> float:
    """CPU seconds of this process's live descendants (decode pools, loader workers): they are this run's own
    work, not another process competing for the cores."""
    try:
        import psutil
    except ImportError:
        return 0.0
    total = 0.0
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return 0.0
    for child in children:
        try:
            times = child.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            continue
    return total


def busy_cores_elsewhere(sample_s: float = 0.1) -> float:
    """Cores' worth of CPU that other processes used over ``sample_s`` seconds (0 where it cannot be measured)."""
    first = _busy_and_own()
    if first is None:
        return 0.0
    start = time.perf_counter()
    time.sleep(sample_s)
    second = _busy_and_own()
    wall = time.perf_counter() - start
    if second is None or wall <= 0:
        return 0.0
    others = (second[0] - first[0]) - (second[1] - first[1])
    return max(0.0, others / wall)


def default_threads(current: int, sample_s: float = 0.1) -> int:
    """Threads for training now: the usable cores that other processes leave free, at least one, at most ``current``."""
    cores = min(usable_cores(), current)
    if cores <= 1:
        return 1
    free = usable_cores() - busy_cores_elsewhere(sample_s)
    return max(1, min(cores, int(free + 0.5)))


@contextmanager
def training_threads(requested: Optional[int]) -> Iterator[int]:
    """torch's intra-op threads within the block: ``requested`` when given, else :func:`default_threads`."""
    import torch

    before = torch.get_num_threads()
    threads = requested or default_threads(before)
    if threads != before:
        torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def prefer_passive_waiting() -> None:
    """Let idle OpenMP threads sleep instead of spinning; only effective before torch is imported, and never
    overriding a value the user set."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
