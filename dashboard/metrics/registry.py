"""The dashboard's Prometheus metrics, served at ``/metrics``, correct across all of the dashboard's processes.

The dashboard is more than one process: waitress serves requests in the main
process, and Dash's background callbacks (the monolith runs) run in job
processes of their own. prometheus_client's multiprocess mode sums them: each
process writes its samples to memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR``
and a scrape aggregates the files (``MultiProcessCollector``).
:func:`.folder.prepare_multiprocess_dir` sets that up before prometheus_client is first
imported: a private, empty folder per dashboard run unless the operator set the
variable (then that folder is used as it is, as for gunicorn). Without the
variable (tests that build the app in-process) the default registry serves.
In ``dashboard serve`` the classify metrics of request threads are queued and
written in batches (:mod:`.tally`; a scrape writes them first, so ``/metrics``
is exact); everything else is written as it happens.

Names follow Prometheus' conventions: ``_total`` counters, ``_seconds``
histograms with buckets from 1 ms to 10 s (a warm request takes milliseconds;
the monolith seconds, so it has buckets of its own), labels with few values.
"""

from __future__ import annotations

import collections
import logging
import os
from collections.abc import Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess,
    start_http_server,
)

from .folder import MULTIPROC_ENV
from .tally import FLUSH_S, ClassifyTally, observe_all

log = logging.getLogger(__name__)

#: seconds: 1 ms to 10 s in 1-2-5 steps (warm requests take milliseconds, a loaded queue up to seconds)
LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
#: seconds: a monolith run imports TensorFlow and loads the model, 1-60 s
MONOLITH_BUCKETS = (0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)

REQUESTS = Counter("warmserve_dashboard_requests_total",
                   "Classify requests the dashboard sent to the backend, by source (ui, api), outcome and error code.",
                   ["source", "outcome", "code"])
REQUEST_SECONDS = Histogram("warmserve_dashboard_request_duration_seconds",
                            "Round trip of a classify request as the dashboard measured it (backend round trip included).",
                            ["source"], buckets=LATENCY_BUCKETS)
STAGE_SECONDS = Histogram("warmserve_backend_stage_duration_seconds",
                          "Time inside the backend per stage (queue, decode, preprocess, inference, total), "
                          "from the replies the dashboard received.", ["stage"], buckets=LATENCY_BUCKETS)
BATCH_SIZE = Histogram("warmserve_backend_batch_size", "Images in the forward pass each answered request ran in.",
                       buckets=BATCH_BUCKETS)
IN_FLIGHT = Gauge("warmserve_dashboard_in_flight_requests", "Classify requests waiting for the backend now.",
                  multiprocess_mode="livesum")
MONOLITH_RUNS = Counter("warmserve_monolith_runs_total", "Monolith runs (a fresh TensorFlow process each), by outcome and code.",
                        ["outcome", "code"])
MONOLITH_SECONDS = Histogram("warmserve_monolith_duration_seconds", "Wall clock of a successful monolith run.",
                             buckets=MONOLITH_BUCKETS)
BACKEND_UP = Gauge("warmserve_backend_up", "1 when the status poller's last check found the backend ready, else 0.",
                   multiprocess_mode="mostrecent")
BACKEND_QUEUE_DEPTH = Gauge("warmserve_backend_queue_depth",
                            "Requests in the backend now (queued or running), from the status poller's last check.",
                            multiprocess_mode="mostrecent")
BACKEND_QUEUE_CAPACITY = Gauge("warmserve_backend_queue_capacity", "The backend's queue size (its capacity).",
                               multiprocess_mode="mostrecent")


def record_classify(source: str, ok: bool, code: str | None, latency_ms: float | None, reply=None) -> None:
    """Count one classify request; ``reply`` (a ClassifyReply) adds its stage times and batch size.

    Queued for the next flush where :func:`gather_classify_metrics` turned gathering on (``dashboard serve``),
    else written at once.
    """
    entry = (source or "unknown", "ok" if ok else "error", "none" if ok else (code or "internal"),
             None if latency_ms is None else latency_ms / 1000.0,
             None if reply is None else (tuple(reply.timings_ms.to_wire().items()), reply.batch_size))
    if not CLASSIFY_TALLY.take(entry):
        _write_classify([entry])


def _write_classify(entries: list) -> None:
    """Write classify entries (see record_classify): one inc per counter sample and per histogram bucket touched."""
    counts = collections.Counter(entry[:3] for entry in entries)
    for labels, count in counts.items():
        REQUESTS.labels(*labels).inc(count)
    latencies: dict[str, list[float]] = collections.defaultdict(list)
    stages: dict[str, list[float]] = collections.defaultdict(list)
    batch_sizes: list[int] = []
    for source, _outcome, _code, seconds, reply in entries:
        if seconds is not None:
            latencies[source].append(seconds)
        if reply is not None:
            timings, batch_size = reply
            for stage, ms in timings:
                stages[stage].append(ms / 1000.0)
            batch_sizes.append(batch_size)
    for source, values in latencies.items():
        observe_all(REQUEST_SECONDS.labels(source), values)
    for stage, values in stages.items():
        observe_all(STAGE_SECONDS.labels(stage), values)
    if batch_sizes:
        observe_all(BATCH_SIZE, batch_sizes)


#: classify metrics gathered in memory (dashboard/metrics/tally.py); off until gather_classify_metrics()
CLASSIFY_TALLY = ClassifyTally(_write_classify)


def gather_classify_metrics(flush_s: float = FLUSH_S) -> None:
    """From now on this process queues classify metrics and writes them in batches (every ``flush_s``, before a
    scrape, when the app stops): the serving process's request threads then make 2 metric writes per request
    (the in-flight gauge) instead of 17."""
    CLASSIFY_TALLY.start(flush_s)


def flush_classify_metrics() -> None:
    """Write the classify metrics gathered so far (a scrape and the app's stop call it)."""
    CLASSIFY_TALLY.flush()


def record_monolith(ok: bool, code: str | None, wall_ms: float | None) -> None:
    MONOLITH_RUNS.labels("ok" if ok else "error", "none" if ok else (code or "internal")).inc()
    if ok and wall_ms is not None:
        MONOLITH_SECONDS.observe(wall_ms / 1000.0)


def record_backend_status(status: Mapping) -> None:
    """The status poller's snapshot as gauges (set at scrape time)."""
    BACKEND_UP.set(1 if status.get("ready") and not status.get("stale") else 0)
    depth, capacity = status.get("in_flight"), status.get("queue_size")
    if isinstance(depth, (int, float)):
        BACKEND_QUEUE_DEPTH.set(depth)
    if isinstance(capacity, (int, float)):
        BACKEND_QUEUE_CAPACITY.set(capacity)


def _scrape_registry():
    """What a scrape reads: every process's samples in multiprocess mode (the folder, read at each scrape), else this
    process's registry."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def exposition() -> tuple[bytes, str]:
    """(body, content type) of a scrape: every process's samples in multiprocess mode, else this process's
    (this process's gathered classify metrics written first)."""
    flush_classify_metrics()
    return generate_latest(_scrape_registry()), CONTENT_TYPE_LATEST


def serve_metrics(host: str, port: int):
    """Serve what :func:`exposition` gives at ``http://host:port/metrics`` from a daemon thread (``jobs-worker
    --metrics-port``: the job processes' samples, summed as on the dashboard's own /metrics); (server, port).
    The same endpoint as the backend's ``--metrics-port`` (prometheus_client's ``start_http_server``)."""
    server, _thread = start_http_server(port, addr=host, registry=_scrape_registry())
    bound = int(server.server_port)
    log.info("Metrics at http://%s:%d/metrics", host if ":" not in host else f"[{host}]", bound)
    return server, bound
