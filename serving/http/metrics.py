"""Prometheus metrics (GET /metrics): requests, errors, latency, queue size and batch size per model.

Each app gets its own CollectorRegistry, so two apps in one process (tests) do not collide.
The queue size is read from the model registry at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from serving.pipelines.batching import BatchStats

# The *_created series only add noise to a scrape.
disable_created_metrics()  # type: ignore[no-untyped-call]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
COUNT_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


class _QueueCollector(Collector):
    def __init__(self, queue_sizes: Callable[[], dict[str, int]]) -> None:
        self._queue_sizes = queue_sizes

    def collect(self) -> Iterable[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "ovtext_queue_size",
            "Requests with rows waiting for the model, plus tokenizer calls waiting",
            labels=["model"],
        )
        for model, size in sorted(self._queue_sizes().items()):
            gauge.add_metric([model], size)
        yield gauge


class ServerMetrics:
    def __init__(self, queue_sizes: Callable[[], dict[str, int]]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ovtext_requests",
            "HTTP requests by endpoint, model and status code",
            ["endpoint", "model", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "ovtext_request_errors",
            "Requests that ended in an error, by kind",
            ["endpoint", "model", "error"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ovtext_request_duration_seconds",
            "Time from request to response",
            ["endpoint", "model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.inference_latency = Histogram(
            "ovtext_inference_duration_seconds",
            "Time of one batch through the model (queueing included)",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "ovtext_batch_size",
            "Sequences per inference batch",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_tokens = Histogram(
            "ovtext_batch_padded_tokens",
            "Padded tokens per inference batch (rows x length)",
            ["model"],
            buckets=(64, 256, 1024, 2048, 4096, 8192, 16384, 32768),
            registry=self.registry,
        )
        self.batch_requests = Histogram(
            "ovtext_batch_requests",
            "Requests whose rows share one inference batch (cross-request batching)",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.documents = Histogram(
            "ovtext_request_documents",
            "Documents or inputs per request",
            ["endpoint", "model"],
            buckets=COUNT_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_QueueCollector(queue_sizes))

    def observe_batches(self, model: str, batches: list[BatchStats]) -> None:
        for batch in batches:
            self.batch_size.labels(model).observe(batch.rows)
            self.batch_tokens.labels(model).observe(batch.padded_tokens)
            self.batch_requests.labels(model).observe(batch.requests)
            self.inference_latency.labels(model).observe(batch.seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
