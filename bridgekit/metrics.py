"""Prometheus metrics and the JSON status endpoint (on their own loopback listener).

The counters are plain Python numbers; ``prometheus_client`` is imported only when someone
first asks for ``/metrics``, through a custom collector that reads them. Most bridges never
turn metrics on, and the library costs about 1 MiB of memory and a lock per counted event.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web

from .contract.http_listener import start_listener, stop_listener

log = logging.getLogger("bridgekit.metrics")

HANDLING_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
ACK_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1)


class Histogram:
    """Observations counted into fixed buckets (per bucket, not cumulative) with their sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, int]]:
        """Prometheus buckets: ``(le, observations <= le)``, ending with ``+Inf``."""
        out, running = [], 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            out.append(("+Inf" if bound == float("inf") else repr(float(bound)), running))
        return out


class Metrics:
    """The counters of one bridge process (one object per bridge, so tests can run several)."""

    def __init__(self) -> None:
        self.events_in_total: dict[str, int] = {}
        self.events_out_total: dict[str, int] = {}
        self.errors_total: dict[str, int] = {}
        self.merged_lines_total = 0
        self.handling: dict[str, Histogram] = {}
        self.ack = Histogram(ACK_BUCKETS)
        self.queue_depth: dict[str, int] = {}
        #: Transactions and outbox rows set aside after failing replays (see outbox/parking.py).
        self.parked: dict[str, int] = {}
        #: End-to-bridge encryption's figures (bridgekit/crypto/service.py), when it is on.
        self.encryption: Callable[[], dict[str, float]] | None = None

    def events_in(self, source: str, n: int = 1) -> None:
        self.events_in_total[source] = self.events_in_total.get(source, 0) + n

    def events_out(self, target: str, n: int = 1) -> None:
        self.events_out_total[target] = self.events_out_total.get(target, 0) + n

    def handled(self, source: str, seconds: float) -> None:
        hist = self.handling.get(source)
        if hist is None:
            hist = self.handling[source] = Histogram(HANDLING_BUCKETS)
        hist.observe(seconds)

    def observe_ack(self, seconds: float, n_events: int) -> None:
        self.ack.observe(seconds)

    def merged_lines(self, n: int) -> None:
        self.merged_lines_total += n

    def error(self, where: str) -> None:
        self.errors_total[where] = self.errors_total.get(where, 0) + 1

    def families(self) -> Iterator[Any]:
        """The metrics as prometheus_client metric families (imports it: see the docstring)."""
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        def labelled(family: Any, values: dict[str, Any]) -> Any:
            for label, value in sorted(values.items()):
                family.add_metric([label], value)
            return family

        yield labelled(
            CounterMetricFamily("bridgekit_events_in", "Events received", labels=["source"]),
            self.events_in_total,
        )
        yield labelled(
            CounterMetricFamily("bridgekit_events_out", "Events sent", labels=["target"]),
            self.events_out_total,
        )
        handling = HistogramMetricFamily(
            "bridgekit_handling_seconds", "Time to handle one event", labels=["source"]
        )
        for source, hist in sorted(self.handling.items()):
            handling.add_metric([source], hist.cumulative(), sum_value=hist.total)
        yield handling
        ack = HistogramMetricFamily(
            "bridgekit_transaction_ack_seconds",
            "Time from receiving a transaction to acknowledging it",
        )
        ack.add_metric([], self.ack.cumulative(), sum_value=self.ack.total)
        yield ack
        yield labelled(
            CounterMetricFamily("bridgekit_errors", "Errors by place", labels=["where"]),
            self.errors_total,
        )
        merged = CounterMetricFamily(
            "bridgekit_merged_lines",
            "Remote lines sent to Matrix inside a merged event (a backlog caught up)",
        )
        merged.add_metric([], self.merged_lines_total)
        yield merged
        yield labelled(
            GaugeMetricFamily("bridgekit_queue_depth", "Events waiting", labels=["queue"]),
            self.queue_depth,
        )
        yield labelled(
            GaugeMetricFamily(
                "bridgekit_parked",
                "Transactions and outbox rows no longer replayed after failing replays",
                labels=["kind"],
            ),
            self.parked,
        )
        if self.encryption is not None:
            yield labelled(
                GaugeMetricFamily(
                    "bridgekit_encryption",
                    "End-to-bridge encryption: events waiting for their room key, decryption "
                    "failures since start (undecryptable, or told to their sender after the "
                    "timeout), the bot device's one-time keys on the homeserver",
                    labels=["what"],
                ),
                self.encryption(),
            )


class _Collector:
    """prometheus_client's custom-collector protocol over :class:`Metrics`."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        return self.metrics.families()


class StatusServer:
    """``GET /metrics`` (Prometheus text) and ``GET /status`` (JSON login states)."""

    def __init__(
        self, metrics: Metrics, status: Callable[[], dict[str, Any]], queues: Callable[[], dict]
    ) -> None:
        self.metrics = metrics
        self.status = status
        self.queues = queues
        self.app = web.Application()
        self.app.router.add_get("/metrics", self.handle_metrics)
        self.app.router.add_get("/status", self.handle_status)
        self.runner: web.AppRunner | None = None
        self._registry: Any = None

    async def start(self, host: str, port: int) -> None:
        self.runner = await start_listener(self.app, host, port)
        log.info("Metrics and status on http://%s:%d/", host, port)

    async def stop(self) -> None:
        if self.runner:
            runner, self.runner = self.runner, None
            await stop_listener(runner)

    async def handle_metrics(self, request: web.Request) -> web.Response:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self._registry is None:
            self._registry = CollectorRegistry()
            self._registry.register(_Collector(self.metrics))
        self.metrics.queue_depth = dict(self.queues())
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def handle_status(self, request: web.Request) -> web.Response:
        return web.json_response(self.status())
