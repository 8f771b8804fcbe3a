"""The backend's Prometheus metrics: recorded always, served over HTTP when ``--metrics-port`` is given.

The backend has an endpoint of its own (rather than only the ``info`` op)
because it is where batches and the queue live, because behind a broker each
worker must be scraped on its own (a ZeroMQ request reaches one worker, at
random), and because Prometheus scrapes HTTP, not ZeroMQ. The endpoint binds
``--metrics-host`` (default 127.0.0.1) and serves only the metrics.

Each server keeps its own registry (tests run several in one process).
Recording costs a few microseconds per request: a counter and six histogram
observations under prometheus_client's locks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

#: seconds: 0.5 ms to 10 s in 1-2-5 steps (a LiteRT forward pass takes a few ms, a full queue seconds)
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class BackendMetrics:
    """Counters, histograms and gauges of one backend server, in a registry of its own."""

    def __init__(self, *, model: str, runtime: str, queue_depth: Callable[[], float], queue_capacity: int) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter("warmserve_backend_requests_total", "Classify requests answered, by outcome and error code.",
                                 ["outcome", "code"], registry=self.registry)
        self._stages = Histogram("warmserve_backend_stage_duration_seconds",
                                 "Time per stage of an answered classify request (queue, decode, preprocess, inference, total).",
                                 ["stage"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self._batch = Histogram("warmserve_backend_batch_size", "Images in each forward pass.", buckets=BATCH_BUCKETS,
                                registry=self.registry)
        depth = Gauge("warmserve_backend_queue_depth", "Requests in the backend now (waiting, decoding or running).",
                      registry=self.registry)
        depth.set_function(queue_depth)
        capacity = Gauge("warmserve_backend_queue_capacity", "Most requests the backend holds before answering overloaded.",
                         registry=self.registry)
        capacity.set(queue_capacity)
        info = Gauge("warmserve_backend_info", "The model and runtime this backend serves (always 1).", ["model", "runtime"],
                     registry=self.registry)
        info.labels(model, runtime).set(1)
        self._server = None

    def answered(self, timings_ms: Mapping[str, float]) -> None:
        """One successful classify reply: its stage times (ms, as on the wire)."""
        self._requests.labels("ok", "none").inc()
        for stage, ms in timings_ms.items():
            self._stages.labels(stage).observe(ms / 1000.0)

    def failed(self, code: str) -> None:
        self._requests.labels("error", code).inc()

    def batch(self, size: int) -> None:
        self._batch.observe(size)

    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics`` on host:port (0 = a free port) on a daemon thread; return the port."""
        self._server, _thread = start_http_server(port, addr=host, registry=self.registry)
        bound = int(self._server.server_port)
        log.info("Metrics at http://%s:%d/metrics", host if ":" not in host else f"[{host}]", bound)
        return bound

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
