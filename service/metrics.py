"""Prometheus metrics for one app instance (its own registry, so several apps can live in one process/tests).

GET /metrics   # imprint_requests_total{route,status}, imprint_request_seconds, imprint_tokens_total, …
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from training.errors import ImprintError


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

    def observe_plan(self, decision: dict[str, Any], retrieval_ms: float) -> None:
        for why in decision.get("hits", []):
            self.retrieval_hits.labels(relevant=str(why["relevant"]).lower()).inc()
        if retrieval_ms:
            self.retrieval_seconds.observe(retrieval_ms / 1000)

    def count_error(self, route: str, exc: ImprintError) -> None:
        from service.errors import status_of

        self.requests.labels(route=route, status=str(status_of(exc))).inc()

    def account(self, route: str, prompt: int, completion: int, retrieved: int, t0: float) -> None:
        """One answered request: count it, its latency since ``t0`` (perf_counter) and its tokens."""
        import time

        self.requests.labels(route=route, status="200").inc()
        self.latency.labels(route=route).observe(time.perf_counter() - t0)
        self.tokens.labels(route=route, kind="prompt").inc(prompt)
        self.tokens.labels(route=route, kind="completion").inc(completion)
        self.tokens.labels(route=route, kind="retrieved").inc(retrieved)
