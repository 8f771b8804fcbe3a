"""model_backend: a persistent ZeroMQ service that keeps a Keras image classifier warm.

Dependencies point one way (tests/unit/test_architecture.py checks it): the core
modules import no backend module, no dashboard, no tools and no TensorFlow;
the backend modules use the core; the dashboard uses only the core.

Core (no TensorFlow; what the dashboard may import):
    protocol.py      the wire: ops table, request/reply encoding, the typed classify reply, worker-link framing
    errors.py        typed errors with wire codes, shown as-is by the dashboard
    settings.py      frozen settings built once: flags -> WARMSERVE_* environment -> defaults; model flags
    client.py        BackendClient: thread-safe, timeouts, Lazy Pirate retries, failover over several addresses
    sockets.py       ZeroMQ helpers: bounded reads, non-blocking sends, a loop guard
    security.py      CURVE keys and the loopback rule

Backend:
    server.py        the ROUTER I/O loop (or links to brokers), decode pool and inference threads
    execution.py     how forward passes run: one interpreter per core, the wide one for a lone request, or micro-batches
    metrics.py       Prometheus metrics of a backend (--metrics-port)
    worker_link.py   a worker's link to the broker (READY, heartbeats, REQUEST/REPLY)
    batching.py      the ready queue decode threads fill, and the micro-batcher (up to max_batch / max_wait)
    inflight.py      requests in flight by request id: a retry joins the work under way (server and broker)
    imaging.py       untrusted image bytes -> RGB uint8 array (Pillow; libwebp for still WebP; no TensorFlow)
    models/          the classifier interface, the registry, the model families, the runtimes (LiteRT, TensorFlow)
    service.py       composition root of a backend process: load, warm up, serve
    broker.py        several workers behind one address (scale-out)
    monolith.py      the old way, kept as a baseline: one fresh process per request
    cli.py           `python -m model_backend serve | classify | ping | info | broker | keys`
    keys_command.py  `keys init KEYS`, `keys add KEYS NAME`: CURVE key folders

The benchmark lives in tools/bench/ (it uses everything; nothing uses it).
"""

__version__ = "0.1.0"
