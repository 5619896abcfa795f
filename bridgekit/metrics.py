"""Prometheus metrics and the JSON status endpoint (on their own loopback listener)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

log = logging.getLogger("bridgekit.metrics")


class Metrics:
    """Counters for one bridge process; a private registry so tests can run several bridges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple[int, str], Any] = {}
        self._events_in = Counter(
            "bridgekit_events_in_total", "Events received", ["source"], registry=self.registry
        )
        self._events_out = Counter(
            "bridgekit_events_out_total", "Events sent", ["target"], registry=self.registry
        )
        self._latency = Histogram(
            "bridgekit_handling_seconds",
            "Time to handle one event",
            ["source"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self._ack = Histogram(
            "bridgekit_transaction_ack_seconds",
            "Time from receiving a transaction to acknowledging it",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1),
            registry=self.registry,
        )
        self._errors = Counter(
            "bridgekit_errors_total", "Errors by place", ["where"], registry=self.registry
        )
        self._merged = Counter(
            "bridgekit_merged_lines_total",
            "Remote lines sent to Matrix inside a merged event (a backlog caught up)",
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "bridgekit_queue_depth", "Events waiting", ["queue"], registry=self.registry
        )

    def _child(self, metric: Any, label: str) -> Any:
        """Labelled children are looked up once: ``labels()`` costs microseconds per event."""
        key = (id(metric), label)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(label)
        return child

    def events_in(self, source: str, n: int = 1) -> None:
        self._child(self._events_in, source).inc(n)

    def events_out(self, target: str, n: int = 1) -> None:
        self._child(self._events_out, target).inc(n)

    def handled(self, source: str, seconds: float) -> None:
        self._child(self._latency, source).observe(seconds)

    def observe_ack(self, seconds: float, n_events: int) -> None:
        self._ack.observe(seconds)

    def merged_lines(self, n: int) -> None:
        self._merged.inc(n)

    def error(self, where: str) -> None:
        self._errors.labels(where).inc()


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

    async def start(self, host: str, port: int) -> None:
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self.runner.setup()
        await web.TCPSite(self.runner, host, port, reuse_address=True).start()
        log.info("Metrics and status on http://%s:%d/", host, port)

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()

    async def handle_metrics(self, request: web.Request) -> web.Response:
        for name, depth in self.queues().items():
            self.metrics.queue_depth.labels(name).set(depth)
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def handle_status(self, request: web.Request) -> web.Response:
        return web.json_response(self.status())
