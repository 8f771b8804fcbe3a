"""model_backend: a persistent ZeroMQ service that keeps a Keras image classifier warm.

Layout:
    protocol.py   wire format shared by client and server (pure functions, no TensorFlow)
    errors.py     typed errors with wire codes, shown as-is by the dashboard
    settings.py   frozen settings objects built once from CLI flags and environment
    imaging.py    untrusted image bytes -> RGB uint8 array (Pillow, no TensorFlow)
    client.py     BackendClient: thread-safe, timeouts, Lazy Pirate retries (no TensorFlow)
    server.py     the ROUTER I/O loop, decode pool and micro-batching inference thread
    batching.py   the micro-batcher (drain a queue up to max_batch / max_wait)
    models/       the classifier interface, the registry and the model families
    monolith.py   the old way, kept as a baseline: one fresh process per request
    cli.py        `python -m model_backend serve | classify | ping | info`
"""

__version__ = "0.1.0"
