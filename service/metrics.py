"""Prometheus metrics for one app instance (its own registry, so several apps can live in one
process/tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "imprint_requests_total",
            "Chat completion requests by route and HTTP status",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "imprint_request_seconds",
            "Chat completion latency by route",
            ["route"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
            registry=self.registry,
        )
        self.tokens = Counter(
            "imprint_tokens_total",
            "Tokens by route and kind (prompt, completion, retrieved)",
            ["route", "kind"],
            registry=self.registry,
        )
        self.retrieval_hits = Counter(
            "imprint_retrieval_hits_total",
            "Retrieved chunks, by whether the router found them relevant",
            ["relevant"],
            registry=self.registry,
        )
        self.retrieval_seconds = Histogram(
            "imprint_retrieval_seconds",
            "KB search latency",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2),
            registry=self.registry,
        )
        self.queue = Gauge(
            "imprint_engine_queue", "Requests waiting for or running on the engine", registry=self.registry
        )
