"""Counters and latency histograms of the API, rendered in Prometheus' text format."""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Callable

LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Histogram:
    """A cumulative-bucket histogram (Prometheus ``histogram`` type)."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS_S) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1

    def render(self, name: str) -> list[str]:
        lines = []
        cumulative = 0
        for bound, count in zip((*self.buckets, float("inf")), self.counts, strict=True):
            cumulative += count
            label = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f'{name}_bucket{{le="{label}"}} {cumulative}')
        lines.append(f"{name}_sum {self.total!r}")
        lines.append(f"{name}_count {self.count}")
        return lines


class Metrics:
    """What /metrics reports. Updated from the event loop and the buffer's worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.accepted = 0
        self.rejected = 0
        self.replayed = 0
        self.delivery_objects = 0
        self.flush_errors = 0
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.journal_seconds = Histogram()
        self.flush_seconds = Histogram()

    def count_request(self, method: str, route: str, status: int) -> None:
        self.requests[(method, route, status)] += 1

    def count_surveys(self, *, accepted: int, rejected: int, replayed: int) -> None:
        self.accepted += accepted
        self.rejected += rejected
        self.replayed += replayed

    def observe_journal(self, seconds: float, objects_flushed: int) -> None:
        with self._lock:
            self.journal_seconds.observe(seconds)
            self.delivery_objects += objects_flushed

    def observe_flush(self, seconds: float, objects_flushed: int) -> None:
        with self._lock:
            self.flush_seconds.observe(seconds)
            self.delivery_objects += objects_flushed

    def count_flush_error(self) -> None:
        with self._lock:
            self.flush_errors += 1

    def render(self, buffered_records: int, buffered_bytes: int) -> str:
        out: list[str] = []

        def metric(name: str, kind: str, help_text: str, lines: Callable[[], list[str]]) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(lines())

        with self._lock:
            metric(
                "contrail_api_surveys_accepted_total",
                "counter",
                "Surveys accepted and journaled (first submissions only).",
                lambda: [f"contrail_api_surveys_accepted_total {self.accepted}"],
            )
            metric(
                "contrail_api_surveys_rejected_total",
                "counter",
                "Surveys rejected (per item of an array; a body refused as a whole counts once).",
                lambda: [f"contrail_api_surveys_rejected_total {self.rejected}"],
            )
            metric(
                "contrail_api_surveys_replayed_total",
                "counter",
                "Retried surveys answered from the idempotency map without buffering again.",
                lambda: [f"contrail_api_surveys_replayed_total {self.replayed}"],
            )
            metric(
                "contrail_api_buffered_records",
                "gauge",
                "Records journaled and waiting in the delivery buffer.",
                lambda: [f"contrail_api_buffered_records {buffered_records}"],
            )
            metric(
                "contrail_api_buffered_bytes",
                "gauge",
                "Bytes of records waiting in the delivery buffer.",
                lambda: [f"contrail_api_buffered_bytes {buffered_bytes}"],
            )
            metric(
                "contrail_api_delivery_objects_total",
                "counter",
                "Delivery objects the buffer has written.",
                lambda: [f"contrail_api_delivery_objects_total {self.delivery_objects}"],
            )
            metric(
                "contrail_api_flush_errors_total",
                "counter",
                "Failed attempts to flush the delivery buffer (records stay journaled).",
                lambda: [f"contrail_api_flush_errors_total {self.flush_errors}"],
            )
            metric(
                "contrail_api_flush_seconds",
                "histogram",
                "Time to write due delivery objects (interval flushes that wrote an object).",
                lambda: self.flush_seconds.render("contrail_api_flush_seconds"),
            )
            metric(
                "contrail_api_journal_seconds",
                "histogram",
                "Time to journal one group of accepted records (add, fsync included).",
                lambda: self.journal_seconds.render("contrail_api_journal_seconds"),
            )
            metric(
                "contrail_api_requests_total",
                "counter",
                "HTTP requests by method, route and status.",
                lambda: [
                    f'contrail_api_requests_total{{method="{method}",route="{route}",'
                    f'status="{status}"}} {count}'
                    for (method, route, status), count in sorted(self.requests.items())
                ],
            )
        return "\n".join(out) + "\n"
