"""The backend server: one I/O loop, a decode pool and the inference thread(s) of an execution plan.

    ROUTER or worker link (I/O loop) --admit--> decode pool (Pillow + preprocess, off the loop)
          ^                                         |
          |                                         v
    inproc PULL <--(job, reply)-- inference thread(s) (execution.py: MicroBatcher -> model.predict,
                                  or one single-thread LiteRT interpreter per core, or both)

* How forward passes run is the :class:`~model_backend.execution.ExecutionPlan`
  (``--execution``; TensorFlow always batches on one thread): ``info`` reports
  ``execution`` and ``execution_reason``. With ``pool`` / ``adaptive`` (LiteRT)
  there is no hand-off to the decode pool: the inference thread that takes a
  request decodes it and runs its forward pass (run to completion: one image
  stays on one core; measured +3% images/s and -0.36 ms at c=1 on 2 cores).

* Only the I/O loop touches the front socket (ZeroMQ sockets are not
  thread-safe) and the table of jobs in flight; other threads hand
  ``(job serial, reply)`` back through per-thread inproc PUSH sockets that the
  loop polls, and the loop sends the reply to every envelope waiting on it.
* A lone request (``adaptive``): when nothing else is in flight, nothing else
  waits to be read and the wide interpreter's last forward pass was short
  (``LONE_ON_LOOP_MAX_FORWARD_MS``; images up to ``LONE_ON_LOOP_MAX_IMAGE_BYTES``
  whose header declares up to ``LONE_ON_LOOP_MAX_PIXELS``, so a hostile file cannot hold the loop),
  the loop decodes it, runs the wide interpreter (holding every core slot, as an
  inference thread would) and sends the reply itself: nothing else could run
  meanwhile anyway, and it saves waking an inference thread and the reply's
  trip back through the outbox. Pings, heartbeats and the stop flag wait that
  one forward pass (a few ms); the loop polls again before its next request.
  ``info`` counts them (``lone_on_loop``).
* Standalone, the front is a bound ROUTER; behind brokers (``connect``, one
  or a comma-separated list), it is :class:`~model_backend.worker_link.WorkerLinks`:
  a WorkerLink on a DEALER per broker, each request answered through the link
  it came on. The loop polls every socket of ``front.sockets`` and reads and
  answers both kinds of front the same way.
* Each op of ``protocol.OP_SPECS`` has one handler here (``_handlers``):
  ping and info are answered on the loop; classify is admitted into the
  pipeline and answered with a ``protocol.ClassifyReply``.
* Admission control: at most ``queue_size`` requests are in flight; beyond
  that the loop answers ``overloaded`` at once instead of letting ZeroMQ drop
  messages silently.
* A request id already in flight is not decoded twice (a client's Lazy Pirate
  retry comes from a new socket): the new envelope is attached to the job and
  the reply goes to every envelope waiting on it (the one that gave up is
  gone and costs nothing; any that still waits gets its answer).
* Every frame is untrusted: frames over the size limit cut their peer off
  (ZMQ_MAXMSGSIZE) before they are buffered, messages with too many frames
  are dropped unread, malformed requests get an error reply, and any
  unexpected exception while handling one message is logged, counted
  (``internal_errors`` in info) and answered with ``internal``: the loop
  goes on. No send in a loop or thread ever blocks.
* Shutdown is SIGINT/SIGTERM (handled by the CLI, which sets ``stop``): the
  loop stops reading, gives in-flight requests ``SHUTDOWN_GRACE_S`` to finish,
  answers the rest ``unavailable`` and returns without waiting on threads
  (they are daemons).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import zmq

from . import __version__, protocol
from . import security
from .errors import BackendError, BackendUnavailable, BadRequest, InternalError, Overloaded
from .execution import ExecutionPlan, Predictor, make_runner, plan_execution
from .imaging import declared_pixels, decode_image
from .models.base import ImageClassifier
from .models.litert_runtime import litert_threads
from .settings import ServerSettings
from .sockets import LoopGuard, Throttle, drain, limit_inbound, readable, send_nowait
from .inflight import InFlight
from .metrics import BackendMetrics
from .worker_link import WorkerLink, WorkerLinks

log = logging.getLogger(__name__)

_OUTBOX_IDS = itertools.count()
#: how long in-flight requests may still finish after a stop signal
SHUTDOWN_GRACE_S = 1.0
#: how long ZeroMQ may still flush the last replies after the front socket closes (close never blocks)
FLUSH_LINGER_MS = 200
#: adaptive: the loop runs a lone request itself only while the wide forward pass takes at most this long
#: and the image is at most this big, so the loop (pings, heartbeats, the stop flag) waits at most a few ms
LONE_ON_LOOP_MAX_FORWARD_MS = 20.0
LONE_ON_LOOP_MAX_IMAGE_BYTES = 1 << 20
#: ... and its header declares at most this many pixels: a small file can declare a huge image (a flat 64 MP PNG
#: is a few hundred KB and takes about a second to inflate; a progressive JPEG of thousands of empty scans counts
#: each pass over the image, imaging.declared_pixels), and that decode must not hold pings and heartbeats
LONE_ON_LOOP_MAX_PIXELS = 4_000_000


def frame_limit(settings: ServerSettings) -> int:
    """The largest frame the server reads (ZMQ_MAXMSGSIZE): see :func:`protocol.frame_limit`."""
    return protocol.frame_limit(max(settings.max_image_bytes, settings.max_header_bytes))


def _router_socket(context: zmq.Context, settings: ServerSettings) -> zmq.Socket:
    """The standalone server's bound ROUTER, size-bounded for untrusted clients."""
    sock = context.socket(zmq.ROUTER)
    security.secure_server(sock, settings.keys_dir, security.CLIENTS)  # CURVE when a keys folder is set
    sock.setsockopt(zmq.LINGER, 0)
    limit_inbound(sock, frame_limit(settings))
    sock.bind(settings.bind)
    return sock


def _worker_socket(context: zmq.Context, settings: ServerSettings, address: str) -> zmq.Socket:
    """A worker's DEALER, connected to one broker's worker endpoint."""
    sock = context.socket(zmq.DEALER)
    security.secure_client(sock, settings.keys_dir, security.WORKER)  # CURVE with this machine's worker pair
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RECONNECT_IVL, 100)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
    limit_inbound(sock, frame_limit(settings))
    sock.connect(address)
    return sock


@dataclass
class _Job:
    """One classify request on its way through the pipeline."""

    serial: int
    envelopes: list[list[bytes]]  # touched by the I/O loop only
    request: protocol.Request
    received: float
    timings_ms: dict = field(default_factory=dict)
    array: np.ndarray | None = None
    decoded_at: float = 0.0


class _RouterFront:
    """The standalone front: a bound ROUTER; a client's envelope is its routing id (+ delimiter)."""

    def __init__(self, sock: zmq.Socket, on_oversized: Callable[[], None]):
        self.socket = sock
        self.sockets = [sock]
        self._on_oversized = on_oversized
        self.dropped = 0

    def receive(self, limit: int = 256) -> Iterator[tuple[list[bytes], list[bytes]]]:
        for frames in drain(self.socket, limit=limit, max_frames=protocol.MAX_REQUEST_FRAMES, on_oversized=self._on_oversized):
            yield protocol.split_envelope(frames)

    def send(self, envelope: list[bytes], reply: bytes) -> bool:
        if send_nowait(self.socket, envelope + [reply]):
            return True
        self.dropped += 1
        return False

    def pending(self) -> bool:
        return readable(self.socket)

    def tick(self, now: float) -> None:
        pass

    def close(self) -> None:
        self.socket.close(linger=FLUSH_LINGER_MS)


class _Outbox:
    """Thread-local PUSH sockets that carry ``(job serial, reply)`` back to the I/O loop.

    Unbounded inproc queues (HWM 0) so a send never blocks: what is in them is
    bounded by ``queue_size`` jobs anyway. Each thread closes its own socket
    (:meth:`release`); after :meth:`close`, sends are dropped.
    """

    def __init__(self, context: zmq.Context, address: str):
        self._context = context
        self._address = address
        self._local = threading.local()
        self.closed = False

    def send(self, serial: int, reply: bytes) -> None:
        if self.closed:
            self.release()
            return
        sock = getattr(self._local, "sock", None)
        if sock is None:
            sock = self._context.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SNDHWM, 0)
            sock.connect(self._address)
            self._local.sock = sock
        try:
            sock.send_multipart([serial.to_bytes(8, "big"), reply], zmq.NOBLOCK)
        except zmq.ZMQError:  # zmq.Again: the loop has gone (shutting down); nobody is waiting for it
            log.debug("Dropping the reply of job %d: the I/O loop is gone", serial)

    def release(self) -> None:
        """Close the calling thread's socket (each thread owns its own)."""
        sock = getattr(self._local, "sock", None)
        if sock is not None:
            self._local.sock = None
            sock.close(linger=0)

    def close(self) -> None:
        self.closed = True


class _DecodePool:
    """Daemon threads that run ``target(job)`` for submitted jobs; close() never waits for them."""

    def __init__(self, threads: int, target: Callable[["_Job"], None], on_exit: Callable[[], None]):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._target = target
        self._on_exit = on_exit
        self._closed = False
        self._threads = [threading.Thread(target=self._run, name=f"decode-{i}", daemon=True) for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, job: "_Job") -> None:
        if self._closed:
            raise RuntimeError("the decode pool is closed")
        self._queue.put(job)

    def _run(self) -> None:
        try:
            while True:
                job = self._queue.get()
                if job is None or self._closed:
                    return
                self._target(job)
        finally:
            self._on_exit()

    def close(self) -> None:
        self._closed = True
        for _ in self._threads:
            self._queue.put(None)


class BackendServer:
    """Serves one set-up, warmed-up model until ``stop`` is set."""

    def __init__(self, settings: ServerSettings, model: ImageClassifier, *, context: zmq.Context | None = None,
                 plan: ExecutionPlan | None = None):
        self.settings = settings
        self.model = model
        self._context = context or zmq.Context.instance()
        self.plan = plan or plan_execution(settings.execution, model, litert_threads(settings.intra_op_threads))
        self._runner = None  # made in open(): its threads release their outbox sockets
        #: pool / adaptive run each request to completion on one inference thread: it decodes, then runs the
        #: forward pass (no hand-off to a decode thread; measured +3% images/s and -0.36 ms at c=1 here)
        self._inline_decode = bool(self.plan.narrow)
        self._outbox_address = f"inproc://warmserve-outbox-{os.getpid()}-{next(_OUTBOX_IDS)}"
        self._outbox = _Outbox(self._context, self._outbox_address)
        self._decoder: _DecodePool | None = None
        self._started = time.time()
        self._jobs: InFlight[int, _Job] = InFlight()  # serial -> job in flight, findable by request id (I/O loop only)
        self._serials = itertools.count(1)
        self._served = 0
        self._errors = 0
        self._deduplicated = 0
        self._oversized = 0
        self._counter_lock = threading.Lock()  # counters change in the loop, decode and inference threads
        self._metrics = BackendMetrics(model=model.name, runtime=getattr(model, "runtime", "tensorflow"),
                                       queue_depth=lambda: len(self._jobs), queue_capacity=settings.queue_size)
        self.metrics_port: int | None = None
        self._guard = LoopGuard(log)
        self._throttle = Throttle()
        self._batches = 0
        self._front: _RouterFront | WorkerLinks | None = None
        self._replies: zmq.Socket | None = None
        self._closed = False
        self._loop_thread: int | None = None  # the I/O loop's thread (serve()): replies made on it are sent at once
        self._lone_on_loop_count = 0
        self._ran_on_loop = False
        #: adaptive: a lone request may run on the I/O loop itself (_run_on_loop)
        self._may_run_on_loop = self.plan.strategy == "adaptive"
        self.endpoint: str | None = None
        #: one handler per op of protocol.OP_SPECS (a new op: an entry there, a handler here)
        self._handlers: dict[str, Callable[[list[bytes], protocol.Request, float], None]] = {
            protocol.OP_CLASSIFY: self._classify,
            protocol.OP_PING: self._ping,
            protocol.OP_INFO: self._info,
        }
        missing = set(protocol.OP_SPECS) - set(self._handlers)
        if missing:
            raise RuntimeError(f"Expected a handler for every op of protocol.OP_SPECS. Received none for: {sorted(missing)}")

    # -- lifecycle --------------------------------------------------------------

    @property
    def is_worker(self) -> bool:
        return self.settings.connect is not None

    @property
    def in_flight(self) -> int:
        return len(self._jobs)

    def open(self) -> str:
        """Bind a ROUTER (standalone) or connect a DEALER to a broker (worker); return the endpoint."""
        self._replies = self._context.socket(zmq.PULL)
        self._replies.setsockopt(zmq.RCVHWM, 0)
        self._replies.bind(self._outbox_address)
        if self.is_worker:
            self._front = WorkerLinks([
                WorkerLink(_worker_socket(self._context, self.settings, address), address, self.settings.heartbeat_ms, self._ready_payload)
                for address in self.settings.connect_addresses
            ])
            self.endpoint = self.settings.connect
        else:
            sock = _router_socket(self._context, self.settings)
            self._front = _RouterFront(sock, self._count_oversized)
            self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._runner = make_runner(self.plan, self._infer, self._outbox.release,
                                   prepare=self._prepare if self._inline_decode else None,
                                   max_batch=self.settings.max_batch, max_wait_ms=self.settings.max_wait_ms,
                                   pool_batch=self.settings.pool_batch)
        # the decode pool only where decoding is handed off (batched / wide); pool / adaptive decode inline
        self._decoder = (None if self._inline_decode else
                         _DecodePool(self.settings.decode_threads, self._decode, self._outbox.release))
        self._runner.start()
        if isinstance(self._front, WorkerLinks):
            self._front.start()
        if self.settings.metrics_port is not None:
            self.metrics_port = self._metrics.serve(self.settings.metrics_host, self.settings.metrics_port)
        return self.endpoint

    def serve(self, stop: threading.Event) -> None:
        """Run the I/O loop until ``stop`` is set; then drain briefly and close."""
        poller = zmq.Poller()
        for sock in self._front.sockets:
            poller.register(sock, zmq.POLLIN)
        poller.register(self._replies, zmq.POLLIN)
        poll_ms = min(200, self.settings.heartbeat_ms)
        self._loop_thread = threading.get_ident()
        try:
            while not stop.is_set():
                try:
                    events = dict(poller.poll(poll_ms))
                    if self._replies in events:
                        self._forward_replies()
                    if any(sock in events for sock in self._front.sockets):
                        self._receive_requests()
                    self._front.tick(time.monotonic())
                except zmq.ContextTerminated:
                    raise
                except Exception:  # noqa: BLE001 - the loop outlives any one failure
                    self._guard.record("serving")
                    stop.wait(0.05)
            self._drain(timeout_s=SHUTDOWN_GRACE_S)
        finally:
            self.close()

    def close(self) -> None:
        """Stop the threads and close the sockets without waiting for slow work (bounded: well under a second)."""
        if self._closed:
            return
        self._closed = True
        if self._runner is not None:
            self._runner.close()
        if self._decoder is not None:
            self._decoder.close()
        self._outbox.close()
        deadline = time.monotonic() + 0.2  # all inference threads together
        for thread in self._runner.threads if self._runner is not None else ():
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if self._front is not None:
            self._front.close()
        self._metrics.close()
        if self._replies is not None and not self._replies.closed:
            self._replies.close(linger=0)
        log.info(
            "Backend stopped after serving %d requests (%d errors, %d internal errors)",
            self._served, self._errors, self._guard.count,
        )

    # -- the I/O loop -------------------------------------------------------------

    def _receive_requests(self) -> None:
        # Take what is waiting now (bounded), so replies are not starved.
        for envelope, body in self._front.receive(limit=256):
            self._ran_on_loop = False
            try:
                self._handle(envelope, body, time.perf_counter())
            except Exception:  # noqa: BLE001 - answer this one request, keep serving the others
                self._guard.record("handling a request")
                self._count_error(InternalError.code)
                error = InternalError("The backend failed while handling this request; it is still serving.")
                self._front.send(envelope, protocol.encode_error(protocol.request_id_of(body), error))
            if self._ran_on_loop:  # back to the poll: replies, heartbeats and the stop flag before the next request
                return

    def _ready_payload(self) -> bytes:
        details = self.info()
        # Each broker is offered the full capacity (two batches), clipped so all of them together fit queue_size:
        # clients use one broker at a time (the last that answered), so a split would idle half a worker for nothing.
        brokers = max(1, len(self.settings.connect_addresses))
        details["capacity"] = max(1, min(self.settings.queue_size // brokers, 2 * self.settings.max_batch, protocol.MAX_WORKER_CAPACITY))
        return json.dumps(details).encode()

    def _forward_replies(self) -> None:
        for frames in drain(self._replies):
            try:
                self._answer(int.from_bytes(frames[0], "big"), frames[1])
            except Exception:  # noqa: BLE001
                self._guard.record("forwarding a reply")

    def _answer(self, serial: int, reply: bytes) -> None:
        """(I/O loop) Send a job's reply to every envelope waiting on it, and forget the job."""
        job = self._jobs.pop(serial)
        if job is None:
            return
        for envelope in job.envelopes:
            self._front.send(envelope, reply)

    def _handle(self, envelope: list[bytes], body: list[bytes], received: float) -> None:
        try:
            request = protocol.parse_request(body, max_header_bytes=self.settings.max_header_bytes)
        except BadRequest as exc:
            self._count_error(exc.code)
            self._throttle.log(log, logging.INFO, "Bad request: %s", exc.message)
            self._front.send(envelope, protocol.encode_error(protocol.request_id_of(body), exc))
            return
        self._handlers[request.op](envelope, request, received)

    def _ping(self, envelope: list[bytes], request: protocol.Request, _received: float) -> None:
        self._front.send(envelope, protocol.encode_reply(request.id, {"ready": True, "model": self.model.name}))

    def _info(self, envelope: list[bytes], request: protocol.Request, _received: float) -> None:
        self._front.send(envelope, protocol.encode_reply(request.id, self.info()))

    def _classify(self, envelope: list[bytes], request: protocol.Request, received: float) -> None:
        """Admit a classify request: attach a retry to its job in flight, or queue a new job for decoding."""
        existing = self._jobs.same(request)
        if existing is not None:  # a retry: it waits for the same reply, the work is not done twice
            self._deduplicated += 1
            self._jobs.attach(existing, envelope)
            return
        if len(self._jobs) >= self.settings.queue_size:
            self._count_error(Overloaded.code)
            error = Overloaded(f"The backend is busy ({len(self._jobs)} requests queued, limit {self.settings.queue_size}); try again shortly.")
            self._front.send(envelope, protocol.encode_error(request.id, error))
            return
        alone = not self._jobs  # nothing else queued, running or on its way back
        job = _Job(serial=next(self._serials), envelopes=[envelope], request=request, received=received)
        self._jobs.add(job.serial, job)
        if alone and self._run_on_loop(job):
            return
        if self._inline_decode:  # the inference thread that takes it decodes it too (run to completion)
            self._runner.put(job)
            return
        self._runner.expect()
        try:
            self._decoder.submit(job)
        except Exception:
            self._runner.cancel()
            self._jobs.pop(job.serial)
            raise

    def _run_on_loop(self, job: _Job) -> bool:
        """adaptive, a lone small request, every core idle and nothing else waiting to be read: run it here.

        The wide interpreter would take every core anyway, so nothing else could
        run meanwhile; this skips waking an inference thread and the reply's trip
        back through the outbox. The loop is held for one decode and forward pass.
        """
        image = job.request.image or b""
        if not self._may_run_on_loop or len(image) > LONE_ON_LOOP_MAX_IMAGE_BYTES or self._front.pending():
            return False
        if (declared_pixels(image) or 0) > LONE_ON_LOOP_MAX_PIXELS:  # no header: its decode fails at once
            return False
        try:
            ran = self._runner.run_alone(job, LONE_ON_LOOP_MAX_FORWARD_MS)
        except Exception:
            self._jobs.pop(job.serial)  # the caller answers it 'internal'
            raise
        if not ran:
            return False
        self._ran_on_loop = True
        self._lone_on_loop_count += 1
        if self._jobs.get(job.serial) is job:  # never left waiting: its reply could not be made
            self._count_error(InternalError.code)
            self._answer(job.serial, protocol.encode_error(job.request.id, InternalError("The backend could not answer this request.")))
        return True

    def info(self) -> dict:
        height, width = self.model.input_size
        front = self._front
        return {
            "model": self.model.name,
            "ready": True,
            "input_size": [height, width],
            "num_classes": self.model.num_classes,
            "runtime": getattr(self.model, "runtime", "tensorflow"),
            "runtime_reason": getattr(self.model, "runtime_reason", ""),
            **self.plan.describe(),
            "max_batch": self.settings.max_batch,
            "max_wait_ms": self.settings.max_wait_ms,
            "queue_size": self.settings.queue_size,
            "max_image_bytes": self.settings.max_image_bytes,
            "max_pixels": self.settings.max_pixels,
            "decode_threads": self.settings.decode_threads,
            "decode_inline": self._inline_decode,  # pool / adaptive: decoded on the inference threads, no decode pool
            "pool_batch": self.settings.pool_batch if self.plan.narrow else None,  # pool / adaptive: most requests per forward pass
            "metrics_port": self.metrics_port,
            "in_flight": len(self._jobs),
            "uptime_s": round(time.time() - self._started, 3),
            "requests_served": self._served,
            "errors": self._errors,
            "internal_errors": self._guard.count,
            "deduplicated": self._deduplicated,
            "dropped_messages": self._oversized + (getattr(front, "oversized", 0) + getattr(front, "rejected", 0)),
            "dropped_replies": getattr(front, "dropped", 0),
            "batches": self._batches,
            "lone_on_loop": self._lone_on_loop_count,  # adaptive: lone requests the I/O loop ran itself (answered or failed)
            "pid": os.getpid(),
            "version": __version__,
        }

    def _drain(self, timeout_s: float) -> None:
        """After a stop signal: give in-flight requests a moment to get their replies, then answer the rest."""
        deadline = time.monotonic() + timeout_s
        poller = zmq.Poller()
        for sock in self._front.sockets:
            poller.register(sock, zmq.POLLIN)
        poller.register(self._replies, zmq.POLLIN)
        while True:
            events = dict(poller.poll(50 if self._jobs else 0))
            if self._replies in events:
                self._forward_replies()
            if any(sock in events for sock in self._front.sockets):  # new arrivals are told at once rather than left to time out
                for envelope, body in self._front.receive(limit=256):
                    error = BackendUnavailable("The backend is shutting down; please retry.")
                    self._front.send(envelope, protocol.encode_error(protocol.request_id_of(body), error))
            if not self._jobs or time.monotonic() >= deadline:
                break
        if self._jobs:
            log.info("Stopping with %d requests still in flight; answering them 'unavailable'", len(self._jobs))
        for job in self._jobs.values():
            error = BackendUnavailable("The backend was stopped before this request finished; please retry.")
            for envelope in job.envelopes:
                self._front.send(envelope, protocol.encode_error(job.request.id, error))
        if self._jobs:
            time.sleep(0.1)  # let ZeroMQ's I/O thread put those replies on the wire before the process ends
        self._jobs.clear()

    # -- off the loop -------------------------------------------------------------

    def _decode(self, job: _Job) -> None:
        if self._prepare(job):
            self._runner.put(job)
        else:
            self._runner.cancel()

    def _prepare(self, job: _Job) -> bool:
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
            self._fail(job, exc)
            return False
        except Exception as exc:  # noqa: BLE001 - an error reply, never a dead thread
            self._guard.record("decoding an image")
            self._fail(job, InternalError(f"Decoding failed: {exc.__class__.__name__}: {exc}"))
            return False
        return True

    def _infer(self, batch: list[_Job], predict: Predictor) -> None:
        """Run one batch on an inference thread; every job gets a reply, whatever fails."""
        try:
            self._run_batch(batch, predict)
        except Exception as exc:  # noqa: BLE001 - answer every request of the failed batch
            log.exception("Inference failed for a batch of %d", len(batch))
            for job in batch:
                self._fail(job, InternalError(f"Inference failed: {exc.__class__.__name__}: {exc}"))

    def _run_batch(self, batch: list[_Job], predict: Predictor) -> None:
        started = time.perf_counter()
        inputs = np.stack([job.array for job in batch]) if len(batch) > 1 else batch[0].array[np.newaxis]
        probabilities = predict(inputs)
        finished = time.perf_counter()
        if probabilities.shape[0] != len(batch):
            raise RuntimeError(f"Expected {len(batch)} rows of probabilities. Received: shape {probabilities.shape}")
        with self._counter_lock:
            self._batches += 1
        self._metrics.batch(len(batch))
        inference_ms = (finished - started) * 1000.0
        for job, row in zip(batch, probabilities):
            try:
                timings = job.timings_ms
                timings["queue"] += (started - job.decoded_at) * 1000.0
                timings["inference"] = inference_ms
                timings["total"] = (time.perf_counter() - job.received) * 1000.0
                answer = protocol.ClassifyReply(
                    predictions=tuple(protocol.Prediction(**top) for top in self.model.top_k(row, job.request.top_k)),
                    timings_ms=protocol.StageTimings(**{name: round(timings[name], 3) for name in protocol.STAGES}),
                    batch_size=len(batch),
                    model=self.model.name,
                )
                reply = protocol.encode_reply(job.request.id, answer.to_wire())
            except Exception as exc:  # noqa: BLE001 - one bad row must not cost the others their replies
                self._guard.record("encoding a reply")
                self._fail(job, InternalError(f"Encoding the reply failed: {exc.__class__.__name__}: {exc}"))
                continue
            with self._counter_lock:
                self._served += 1
            self._metrics.answered(answer.timings_ms.to_wire())
            self._reply(job.serial, reply)

    def _reply(self, serial: int, reply: bytes) -> None:
        """A job's reply: sent at once on the I/O loop's thread, else handed to the loop through the outbox."""
        if threading.get_ident() == self._loop_thread:
            self._answer(serial, reply)
        else:
            self._outbox.send(serial, reply)

    def _count_error(self, code: str) -> None:
        with self._counter_lock:
            self._errors += 1
        self._metrics.failed(code)

    def _count_oversized(self) -> None:
        self._oversized += 1
        self._throttle.log(log, logging.WARNING, "Dropped a message with more than %d frames", protocol.MAX_REQUEST_FRAMES)

    def _fail(self, job: _Job, error: BackendError) -> None:
        try:
            self._count_error(error.code)
            log.info("Request %s failed: %s (%s)", job.request.id, error.code, error.message)
            self._reply(job.serial, protocol.encode_error(job.request.id, error))
        except Exception:  # noqa: BLE001 - a thread's last resort
            self._guard.record("sending an error reply")
