"""The backend server: one I/O loop, a decode pool and one micro-batching inference thread.

    ROUTER (I/O loop) --admit--> decode pool (Pillow + preprocess, off the loop)
          ^                          |
          |                          v
    inproc PULL <--replies-- inference thread (MicroBatcher -> model.predict)

* Only the I/O loop touches the ROUTER socket (ZeroMQ sockets are not
  thread-safe); other threads hand replies back through per-thread inproc PUSH
  sockets that the loop polls.
* Admission control: at most ``queue_size`` requests are in flight; beyond
  that the loop answers ``overloaded`` at once instead of letting ZeroMQ drop
  messages silently.
* Every frame is untrusted: malformed requests get an error reply with a code
  and a message and the loop keeps serving.
* Shutdown is SIGINT/SIGTERM (handled by the CLI, which sets ``stop``).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import zmq

from . import __version__, protocol
from .batching import MicroBatcher
from .errors import BackendError, BadRequest, InternalError, Overloaded
from .imaging import decode_image
from .models.base import ImageClassifier
from .settings import ServerSettings
from .sockets import drain

log = logging.getLogger(__name__)

_OUTBOX_IDS = itertools.count()


@dataclass
class _Job:
    """One classify request on its way through the pipeline."""

    envelope: list[bytes]
    request: protocol.Request
    received: float
    timings_ms: dict = field(default_factory=dict)
    array: np.ndarray | None = None
    decoded_at: float = 0.0


class _Outbox:
    """Thread-local PUSH sockets that carry reply frames back to the I/O loop."""

    def __init__(self, context: zmq.Context, address: str):
        self._context = context
        self._address = address
        self._local = threading.local()
        self._sockets: list[zmq.Socket] = []
        self._lock = threading.Lock()

    def send(self, envelope: list[bytes], reply: bytes) -> None:
        sock = getattr(self._local, "sock", None)
        if sock is None:
            sock = self._context.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(self._address)
            self._local.sock = sock
            with self._lock:
                self._sockets.append(sock)
        sock.send_multipart(envelope + [reply])

    def close(self) -> None:
        with self._lock:
            for sock in self._sockets:
                sock.close(linger=0)
            self._sockets.clear()


class BackendServer:
    """Serves one set-up, warmed-up model until ``stop`` is set."""

    def __init__(self, settings: ServerSettings, model: ImageClassifier, *, context: zmq.Context | None = None):
        self.settings = settings
        self.model = model
        self._context = context or zmq.Context.instance()
        self._batcher: MicroBatcher[_Job] = MicroBatcher(settings.max_batch, settings.max_wait_ms)
        self._outbox_address = f"inproc://warmserve-outbox-{os.getpid()}-{next(_OUTBOX_IDS)}"
        self._outbox = _Outbox(self._context, self._outbox_address)
        self._decoder = ThreadPoolExecutor(settings.decode_threads, thread_name_prefix="decode")
        self._started = time.time()
        self._in_flight = 0
        self._served = 0
        self._errors = 0
        self._counter_lock = threading.Lock()  # errors are counted from the loop and decode threads
        self._batches = 0
        self.endpoint: str | None = None
        self._broker_seen = time.monotonic()

    # -- lifecycle --------------------------------------------------------------

    @property
    def is_worker(self) -> bool:
        return self.settings.connect is not None

    def open(self) -> str:
        """Bind a ROUTER (standalone) or connect a DEALER to a broker (worker); return the endpoint."""
        if self.is_worker:
            self._front = self._context.socket(zmq.DEALER)
            self._front.setsockopt(zmq.LINGER, 0)
            self._front.setsockopt(zmq.RECONNECT_IVL, 100)
            self._front.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
            self._front.connect(self.settings.connect)
            self.endpoint = self.settings.connect
            self._send_ready()
        else:
            self._front = self._context.socket(zmq.ROUTER)
            self._front.setsockopt(zmq.LINGER, 0)
            self._front.bind(self.settings.bind)
            self.endpoint = self._front.getsockopt_string(zmq.LAST_ENDPOINT)
        self._replies = self._context.socket(zmq.PULL)
        self._replies.bind(self._outbox_address)
        self._inference = threading.Thread(target=self._inference_loop, name="inference", daemon=True)
        self._inference.start()
        return self.endpoint

    def serve(self, stop: threading.Event) -> None:
        """Run the I/O loop until ``stop`` is set; then drain briefly and close."""
        poller = zmq.Poller()
        poller.register(self._front, zmq.POLLIN)
        poller.register(self._replies, zmq.POLLIN)
        heartbeat_s = self.settings.heartbeat_ms / 1000.0
        next_heartbeat = time.monotonic() + heartbeat_s
        try:
            while not stop.is_set():
                events = dict(poller.poll(min(200, self.settings.heartbeat_ms)))
                if self._replies in events:
                    self._forward_replies()
                if self._front in events:
                    self._receive_requests()
                if self.is_worker and time.monotonic() >= next_heartbeat:
                    self._worker_heartbeat()
                    next_heartbeat = time.monotonic() + heartbeat_s
            self._drain(timeout_s=2.0)
        finally:
            self.close()

    def close(self) -> None:
        self._batcher.close()
        self._decoder.shutdown(wait=True, cancel_futures=True)
        if getattr(self, "_inference", None) is not None:
            self._inference.join(timeout=10)
        self._outbox.close()
        for sock in (getattr(self, "_front", None), getattr(self, "_replies", None)):
            if sock is not None and not sock.closed:
                sock.close(linger=0)
        log.info("Backend stopped after serving %d requests (%d errors)", self._served, self._errors)

    # -- the I/O loop -------------------------------------------------------------

    def _receive_requests(self) -> None:
        # Take what is waiting now (bounded), so replies are not starved.
        for frames in drain(self._front, limit=256):
            if self.is_worker and len(frames) == 1 and frames[0] in (protocol.WORKER_HEARTBEAT, protocol.WORKER_READY):
                self._broker_seen = time.monotonic()
                if frames[0] == protocol.WORKER_READY:  # the broker does not know us (it restarted)
                    self._send_ready()
                continue
            if self.is_worker:
                self._broker_seen = time.monotonic()
            self._handle(frames, time.perf_counter())

    # -- worker mode (behind a broker) ------------------------------------------------

    def _send_ready(self) -> None:
        details = self.info()
        details["capacity"] = min(self.settings.queue_size, 2 * self.settings.max_batch)
        self._front.send_multipart([protocol.WORKER_READY, json.dumps(details).encode()])
        self._broker_seen = time.monotonic()

    def _worker_heartbeat(self) -> None:
        self._front.send_multipart([protocol.WORKER_HEARTBEAT])
        silent_s = time.monotonic() - self._broker_seen
        if silent_s > 3 * self.settings.heartbeat_ms / 1000.0:
            log.warning("No word from the broker at %s for %.1f s; registering again", self.settings.connect, silent_s)
            self._send_ready()

    def _forward_replies(self) -> None:
        for frames in drain(self._replies):
            self._in_flight -= 1
            self._front.send_multipart(frames)

    def _reply_now(self, envelope: list[bytes], reply: bytes) -> None:
        self._front.send_multipart(envelope + [reply])

    def _handle(self, frames: list[bytes], received: float) -> None:
        envelope, body = protocol.split_envelope(frames)
        try:
            request = protocol.parse_request(body, max_header_bytes=self.settings.max_header_bytes)
        except BadRequest as exc:
            self._count_error()
            log.info("Bad request: %s", exc.message)
            self._reply_now(envelope, protocol.encode_error(protocol.request_id_of(body), exc))
            return
        if request.op == protocol.OP_PING:
            self._reply_now(envelope, protocol.encode_reply(request.id, {"ready": True, "model": self.model.name}))
            return
        if request.op == protocol.OP_INFO:
            self._reply_now(envelope, protocol.encode_reply(request.id, self.info()))
            return
        if self._in_flight >= self.settings.queue_size:
            self._count_error()
            error = Overloaded(f"The backend is busy ({self._in_flight} requests queued, limit {self.settings.queue_size}); try again shortly.")
            self._reply_now(envelope, protocol.encode_error(request.id, error))
            return
        self._in_flight += 1
        self._batcher.expect()
        self._decoder.submit(self._decode, _Job(envelope=envelope, request=request, received=received))

    def info(self) -> dict:
        height, width = self.model.input_size
        return {
            "model": self.model.name,
            "ready": True,
            "input_size": [height, width],
            "num_classes": self.model.num_classes,
            "max_batch": self.settings.max_batch,
            "max_wait_ms": self.settings.max_wait_ms,
            "queue_size": self.settings.queue_size,
            "max_image_bytes": self.settings.max_image_bytes,
            "decode_threads": self.settings.decode_threads,
            "in_flight": self._in_flight,
            "uptime_s": round(time.time() - self._started, 3),
            "requests_served": self._served,
            "errors": self._errors,
            "batches": self._batches,
            "pid": os.getpid(),
            "version": __version__,
        }

    def _drain(self, timeout_s: float) -> None:
        """After a stop signal: give in-flight requests a moment to get their replies."""
        deadline = time.monotonic() + timeout_s
        while self._in_flight > 0 and time.monotonic() < deadline:
            if self._replies.poll(50):
                self._forward_replies()

    # -- off the loop -------------------------------------------------------------

    def _decode(self, job: _Job) -> None:
        started = time.perf_counter()
        try:
            image = decode_image(
                job.request.image or b"",
                self.model.input_size,
                max_bytes=self.settings.max_image_bytes,
                max_pixels=self.settings.max_pixels,
            )
            decoded = time.perf_counter()
            job.array = self.model.preprocess(image)
            job.decoded_at = time.perf_counter()
            job.timings_ms["queue"] = (started - job.received) * 1000.0
            job.timings_ms["decode"] = (decoded - started) * 1000.0
            job.timings_ms["preprocess"] = (job.decoded_at - decoded) * 1000.0
        except BackendError as exc:
            self._batcher.cancel()
            self._fail(job, exc)
            return
        except Exception as exc:  # noqa: BLE001 - an error reply, never a dead thread
            self._batcher.cancel()
            log.exception("Decoding failed unexpectedly")
            self._fail(job, InternalError(f"Decoding failed: {exc.__class__.__name__}: {exc}"))
            return
        self._batcher.put(job)

    def _inference_loop(self) -> None:
        while True:
            batch = self._batcher.next_batch()
            if not batch:
                return
            try:
                self._run_batch(batch)
            except Exception as exc:  # noqa: BLE001 - answer every request of the failed batch
                log.exception("Inference failed for a batch of %d", len(batch))
                for job in batch:
                    self._fail(job, InternalError(f"Inference failed: {exc.__class__.__name__}: {exc}"))

    def _run_batch(self, batch: list[_Job]) -> None:
        started = time.perf_counter()
        inputs = np.stack([job.array for job in batch]) if len(batch) > 1 else batch[0].array[np.newaxis]
        probabilities = self.model.predict(inputs)
        finished = time.perf_counter()
        if probabilities.shape[0] != len(batch):
            raise RuntimeError(f"Expected {len(batch)} rows of probabilities. Received: shape {probabilities.shape}")
        self._batches += 1
        inference_ms = (finished - started) * 1000.0
        for job, row in zip(batch, probabilities):
            timings = job.timings_ms
            timings["queue"] += (started - job.decoded_at) * 1000.0
            timings["inference"] = inference_ms
            timings["total"] = (time.perf_counter() - job.received) * 1000.0
            payload = {
                "predictions": self.model.top_k(row, job.request.top_k),
                "timings_ms": {name: round(value, 3) for name, value in timings.items()},
                "batch_size": len(batch),
                "model": self.model.name,
            }
            self._served += 1
            self._outbox.send(job.envelope, protocol.encode_reply(job.request.id, payload))

    def _count_error(self) -> None:
        with self._counter_lock:
            self._errors += 1

    def _fail(self, job: _Job, error: BackendError) -> None:
        self._count_error()
        log.info("Request %s failed: %s (%s)", job.request.id, error.code, error.message)
        self._outbox.send(job.envelope, protocol.encode_error(job.request.id, error))
