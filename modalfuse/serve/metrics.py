"""Prometheus text-format metrics without a client library: counters and histograms."""
from __future__ import annotations

import threading
from collections import defaultdict

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Histogram:
    def __init__(self, buckets: tuple) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        for i, edge in enumerate(self.buckets):
            if value <= edge:
                self.counts[i] += 1
        self.total += 1
        self.sum += value

    def lines(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        out = [f'{name}_bucket{{{labels}{sep}le="{edge}"}} {count}' for edge, count in zip(self.buckets, self.counts)]
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.total}')
        lab = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{lab} {self.sum:.6f}", f"{name}_count{lab} {self.total}"]
        return out


class Metrics:
    """Request counts by endpoint and status, request latency by endpoint, micro-batch sizes."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = {}
        self.batch_rows = Histogram(BATCH_BUCKETS)
        self.batch_requests = Histogram(BATCH_BUCKETS)

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        with self.lock:
            self.requests[(endpoint, status)] += 1
            self.latency.setdefault(endpoint, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def batch(self, rows: int, requests: int) -> None:
        with self.lock:
            self.batch_rows.observe(rows)
            self.batch_requests.observe(requests)

    def render(self) -> str:
        with self.lock:
            lines = ["# HELP modalfuse_requests_total HTTP requests by endpoint and status code.",
                     "# TYPE modalfuse_requests_total counter"]
            for (endpoint, status), n in sorted(self.requests.items()):
                lines.append(f'modalfuse_requests_total{{endpoint="{endpoint}",status="{status}"}} {n}')
            lines += ["# HELP modalfuse_request_latency_seconds Request latency by endpoint.",
                      "# TYPE modalfuse_request_latency_seconds histogram"]
            for endpoint, hist in sorted(self.latency.items()):
                lines += hist.lines("modalfuse_request_latency_seconds", f'endpoint="{endpoint}"')
            lines += ["# HELP modalfuse_batch_size_records Records per forward pass (micro-batch).",
                      "# TYPE modalfuse_batch_size_records histogram"]
            lines += self.batch_rows.lines("modalfuse_batch_size_records")
            lines += ["# HELP modalfuse_batch_size_requests Requests grouped into one forward pass.",
                      "# TYPE modalfuse_batch_size_requests histogram"]
            lines += self.batch_requests.lines("modalfuse_batch_size_requests")
        return "\n".join(lines) + "\n"
