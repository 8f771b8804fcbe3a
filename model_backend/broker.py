"""The broker: several backend workers behind one address (scale-out). Clients do not change.

    clients (DEALER/REQ) --> ROUTER frontend   [broker]   ROUTER backend <-- workers (DEALER, `serve --connect`)

A credit-based variant of the ZeroMQ guide's load-balancing broker, with the
worker link framed as in its Majordomo protocol (see protocol.py: READY,
HEARTBEAT, REQUEST, REPLY, DISCONNECT after an empty frame and a protocol tag):

* A worker registers with READY (its model, batching settings and
  ``capacity``: how many requests it takes at once so it can batch them),
  checked by :func:`protocol.parse_worker_ready`. The broker hands each request
  to the worker with the most free capacity; when every worker is full,
  requests wait in the broker (up to ``queue_size``, then ``overloaded`` at once).
* Client envelopes never leave the broker: a worker gets ``REQUEST token
  header image`` and answers ``REPLY token reply``. A REPLY is accepted only
  from a worker that request was dispatched to (a late reply from a worker
  that was just dropped still answers a request nobody else has answered);
  anything else is dropped with a log line. So a client cannot pass for a
  worker, and a worker cannot answer requests it was not given.
* A request id that is already waiting or at a worker (a client's Lazy Pirate
  retry, from a new socket) is not dispatched again: its new envelope waits
  for the same reply, which goes to every envelope.
* Workers and broker exchange heartbeats. A worker silent for ``liveness``
  heartbeats (or that says DISCONNECT) is taken out of rotation and each of
  its in-flight requests is retried once on another worker, else answered
  with an ``unavailable`` error: never silence. A new worker joins at any time.
* ``ping`` and ``info`` are answered by the broker itself (ready = at least
  one worker); ``classify`` is validated here and goes to a worker.
* Untrusted input on both sides: frames over the size limits cut their peer
  off (ZMQ_MAXMSGSIZE), messages with too many frames are dropped unread, no
  send ever blocks, and any unexpected exception while handling one message
  is logged, counted (``internal_errors`` in info) and survived.
"""

from __future__ import annotations

import itertools
import logging
import signal
import sys
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

import zmq

from . import __version__, protocol
from . import security
from .errors import BackendError, BackendUnavailable, BadReply, BadRequest, InternalError, NotReady, Overloaded
from .inflight import InFlight
from .settings import BrokerSettings
from .sockets import LoopGuard, Throttle, drain, limit_inbound, send_nowait

log = logging.getLogger(__name__)

#: workers registered at once at most (READYs beyond this are refused with a log line)
MAX_WORKERS = 1024
#: most frames of a worker message, identity included: [identity, b"", tag, REPLY, token, reply]
_MAX_WORKER_FRAMES = 6


def _frontend_socket(context: zmq.Context, settings: BrokerSettings) -> zmq.Socket:
    """The ROUTER clients connect to, size-bounded for untrusted clients."""
    sock = context.socket(zmq.ROUTER)
    security.secure_server(sock, settings.keys_dir, security.CLIENTS)  # CURVE: only keys in KEYS/clients
    sock.setsockopt(zmq.LINGER, 0)
    limit_inbound(sock, settings.max_frame_bytes)
    sock.bind(settings.frontend)
    return sock


def _backend_socket(context: zmq.Context, settings: BrokerSettings) -> zmq.Socket:
    """The ROUTER workers connect to: only small control and reply frames come in."""
    sock = context.socket(zmq.ROUTER)
    security.secure_server(sock, settings.keys_dir, security.WORKERS)  # CURVE: only keys in KEYS/workers
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    sock.setsockopt(zmq.SNDHWM, protocol.MAX_WORKER_CAPACITY + 64)  # a worker's full credit plus heartbeats
    limit_inbound(sock, protocol.MAX_REPLY_BYTES)
    sock.bind(settings.backend)
    return sock


@dataclass
class _Pending:
    """A classify request the broker holds: who waits for it and its frames (the client envelopes stay here)."""

    token: bytes
    request: protocol.Request
    body: list[bytes]
    envelopes: list[list[bytes]]
    attempts: int = 0
    worker: bytes | None = None  # the worker holding it now
    tried: set[bytes] = field(default_factory=set)  # every worker it was given: their REPLY is accepted
    answered: bool = False


@dataclass
class _Worker:
    identity: bytes
    ready: protocol.WorkerReady
    expires: float
    in_flight: set[bytes] = field(default_factory=set)

    @property
    def capacity(self) -> int:
        return self.ready.capacity

    @property
    def free(self) -> int:
        return self.capacity - len(self.in_flight)


class Broker:
    """Routes client requests to the least-loaded live worker."""

    def __init__(self, settings: BrokerSettings, *, context: zmq.Context | None = None):
        self.settings = settings
        self._context = context or zmq.Context.instance()
        self._workers: OrderedDict[bytes, _Worker] = OrderedDict()
        self._waiting: deque[_Pending] = deque()
        self._pending: InFlight[bytes, _Pending] = InFlight()  # token -> waiting or at a worker, findable by request id
        self._tokens = itertools.count(1)
        self._started = time.time()
        self._served = 0
        self._retried = 0
        self._lost_workers = 0
        self._deduplicated = 0
        self._rejected = 0
        self._dropped = 0
        self._guard = LoopGuard(log)
        self._throttle = Throttle()
        self.frontend_endpoint: str | None = None
        self.backend_endpoint: str | None = None

    def open(self) -> tuple[str, str]:
        self._front = _frontend_socket(self._context, self.settings)
        self._back = _backend_socket(self._context, self.settings)
        self.frontend_endpoint = self._front.getsockopt_string(zmq.LAST_ENDPOINT)
        self.backend_endpoint = self._back.getsockopt_string(zmq.LAST_ENDPOINT)
        return self.frontend_endpoint, self.backend_endpoint

    def serve(self, stop: threading.Event) -> None:
        poller = zmq.Poller()
        poller.register(self._front, zmq.POLLIN)
        poller.register(self._back, zmq.POLLIN)
        interval = self.settings.heartbeat_ms / 1000.0
        next_heartbeat = time.monotonic() + interval
        try:
            while not stop.is_set():
                try:
                    events = dict(poller.poll(min(200, self.settings.heartbeat_ms)))
                    if self._back in events:
                        self._from_workers()
                    if self._front in events:
                        self._from_clients()
                    now = time.monotonic()
                    if now >= next_heartbeat:
                        next_heartbeat = now + interval
                        self._send_heartbeats()
                        self._expire_workers(now)
                except zmq.ContextTerminated:
                    raise
                except Exception:  # noqa: BLE001 - the broker outlives any one failure
                    self._guard.record("brokering")
                    stop.wait(0.05)
            stopping = BackendUnavailable("The broker was stopped before this request was answered; please retry.")
            last_words = len(self._pending)
            for frames in drain(self._front, max_frames=protocol.MAX_REQUEST_FRAMES):  # arrived, not yet read
                envelope, body = protocol.split_envelope(frames)
                self._to_client(envelope, protocol.encode_error(protocol.request_id_of(body), stopping))
                last_words += 1
            self._answer_all(stopping)
            if last_words:
                time.sleep(0.1)  # let ZeroMQ's I/O thread put those replies on the wire before the process ends
        finally:
            self._front.close(linger=200)  # the last replies still go out; close itself never blocks
            self._back.close(linger=0)
            log.info(
                "Broker stopped after %d replies (%d retried, %d workers lost, %d internal errors)",
                self._served, self._retried, self._lost_workers, self._guard.count,
            )

    # -- workers -------------------------------------------------------------------

    def _from_workers(self) -> None:
        for frames in drain(self._back, max_frames=_MAX_WORKER_FRAMES, on_oversized=self._count_oversized):
            try:
                self._worker_message(frames[0], frames[1:])
            except Exception:  # noqa: BLE001 - drop this message, keep brokering
                self._guard.record("handling a worker message")
        self._dispatch()  # replies freed capacity: hand waiting requests out now

    def _worker_message(self, identity: bytes, frames: list[bytes]) -> None:
        try:
            message = protocol.parse_worker_message(frames, sender="worker")
        except BadRequest as exc:
            self._reject(f"Dropping a malformed message from a worker: {exc.message}")
            return
        if message.command == protocol.W_READY:
            self._register(identity, message.frames[0])
            return
        worker = self._workers.get(identity)
        if message.command == protocol.W_DISCONNECT:
            if worker is not None:
                self._drop_worker(identity, "said goodbye")
            return
        if worker is None:
            # A worker we dropped (or from before a broker restart): ask it to register again.
            self._send_to_worker(identity, protocol.W_DISCONNECT)
        else:
            worker.expires = time.monotonic() + self._liveness_s()
        if message.command == protocol.W_REPLY:
            self._accept_reply(identity, *message.frames)

    def _accept_reply(self, identity: bytes, token: bytes, reply: bytes) -> None:
        """A worker's reply goes to the request's clients, if that request was given to that worker and is unanswered."""
        pending = self._pending.get(token)
        if pending is None:
            self._throttle.log(log, logging.INFO, "Dropping a REPLY for a request that is not pending (answered already, or never sent)")
            return
        if identity not in pending.tried:
            self._reject(f"Dropping a REPLY for request {pending.request.id} from a worker it was not given to")
            return
        try:
            decoded = protocol.decode_reply(reply)
            if decoded.get("id") != pending.request.id:
                raise BadReply(f"Expected a reply for id {pending.request.id}. Received: id={decoded.get('id')!r}")
        except BadReply as exc:
            log.warning("A worker sent an invalid reply: %s", exc.message)
            reply = protocol.encode_error(pending.request.id, InternalError("The worker sent an invalid reply."))
        self._finish(pending, reply)

    def _register(self, identity: bytes, payload: bytes) -> None:
        try:
            ready = protocol.parse_worker_ready(payload)
        except BadRequest as exc:
            self._reject(f"Ignoring a READY with an invalid payload: {exc.message}")
            return
        expires = time.monotonic() + self._liveness_s()
        worker = self._workers.get(identity)
        if worker is not None:  # registering again (it missed our heartbeats): keep what it holds
            worker.expires, worker.ready = expires, ready
            return
        if len(self._workers) >= MAX_WORKERS:
            self._reject(f"Ignoring a READY: {MAX_WORKERS} workers are registered already")
            return
        self._workers[identity] = _Worker(identity, ready, expires)
        log.info("Worker joined: model=%s pid=%s capacity=%d (%d workers)", ready.model, ready.pid, ready.capacity, len(self._workers))
        self._dispatch()

    def _send_heartbeats(self) -> None:
        for identity in list(self._workers):
            self._send_to_worker(identity, protocol.W_HEARTBEAT)

    def _send_to_worker(self, identity: bytes, command: bytes, *frames: bytes) -> bool:
        return send_nowait(self._back, [identity, *protocol.encode_worker_message(command, *frames)])

    def _expire_workers(self, now: float) -> None:
        for identity, worker in list(self._workers.items()):
            if worker.expires < now:
                self._drop_worker(identity, "stopped sending heartbeats")

    def _drop_worker(self, identity: bytes, why: str) -> None:
        worker = self._workers.pop(identity)
        self._lost_workers += 1
        log.warning("Worker pid=%s %s; taken out of rotation with %d requests in flight", worker.ready.pid, why, len(worker.in_flight))
        for token in worker.in_flight:
            pending = self._pending.get(token)
            if pending is None:
                continue
            pending.worker = None
            if pending.attempts <= self.settings.retries and self._workers:
                self._retried += 1
                self._waiting.appendleft(pending)
            else:
                self._finish(pending, protocol.encode_error(pending.request.id, BackendUnavailable("The worker handling this request stopped answering; please retry.")))
        worker.in_flight.clear()
        self._dispatch()

    # -- clients -------------------------------------------------------------------

    def _from_clients(self) -> None:
        for frames in drain(self._front, max_frames=protocol.MAX_REQUEST_FRAMES, on_oversized=self._count_oversized):
            envelope, body = protocol.split_envelope(frames)
            try:
                self._client_message(envelope, body)
            except Exception:  # noqa: BLE001 - answer this one, keep brokering
                self._guard.record("handling a client request")
                error = InternalError("The broker failed while handling this request; it is still serving.")
                self._to_client(envelope, protocol.encode_error(protocol.request_id_of(body), error))
        self._dispatch()

    def _client_message(self, envelope: list[bytes], body: list[bytes]) -> None:
        try:
            request = protocol.parse_request(body)
        except BadRequest as exc:
            self._to_client(envelope, protocol.encode_error(protocol.request_id_of(body), exc))
            return
        if protocol.OP_SPECS[request.op].answered_by_broker:
            self._answer_locally(envelope, request)
            return
        pending = self._pending.same(request)
        if pending is not None:  # a retry of a request the broker holds: it waits for the same reply, no second dispatch
            self._deduplicated += 1
            self._pending.attach(pending, envelope)
            return
        if len(self._waiting) >= self.settings.queue_size:
            error = Overloaded(f"All workers are busy and {len(self._waiting)} requests are waiting; try again shortly.")
            self._to_client(envelope, protocol.encode_error(request.id, error))
            return
        pending = _Pending(next(self._tokens).to_bytes(8, "big"), request, body, [envelope])
        self._pending.add(pending.token, pending)
        self._waiting.append(pending)

    def _answer_locally(self, envelope: list[bytes], request: protocol.Request) -> None:
        """Ops marked ``answered_by_broker`` in protocol.OP_SPECS (ping, info): they describe the whole pool."""
        payloads = {protocol.OP_PING: self._ping_payload, protocol.OP_INFO: self.info}
        self._to_client(envelope, protocol.encode_reply(request.id, payloads[request.op]()))

    def _ping_payload(self) -> dict:
        return {"ready": bool(self._workers), "model": self._model_name(), "workers": len(self._workers)}

    def _to_client(self, envelope: list[bytes], reply: bytes) -> None:
        if not send_nowait(self._front, envelope + [reply]):
            self._dropped += 1

    def _finish(self, pending: _Pending, reply: bytes) -> None:
        """Answer every envelope waiting on ``pending`` and forget it."""
        pending.answered = True
        self._pending.pop(pending.token)
        worker = self._workers.get(pending.worker) if pending.worker is not None else None
        if worker is not None:
            worker.in_flight.discard(pending.token)
        for envelope in pending.envelopes:
            self._to_client(envelope, reply)
        self._served += 1

    def _answer_all(self, error: BackendError) -> None:
        for pending in self._pending.values():
            self._finish(pending, protocol.encode_error(pending.request.id, error))
        self._waiting.clear()

    def _dispatch(self) -> None:
        while self._waiting:
            if self._waiting[0].answered:
                self._waiting.popleft()
                continue
            if not self._workers:
                # No worker at all: answer instead of letting requests wait for one that may never come.
                error = NotReady("No model worker is connected to the broker yet; start one with `python -m model_backend serve --connect ...`.")
                while self._waiting:
                    pending = self._waiting.popleft()
                    if not pending.answered:
                        self._finish(pending, protocol.encode_error(pending.request.id, error))
                return
            worker = max(self._workers.values(), key=lambda w: w.free)
            if worker.free <= 0:
                return
            pending = self._waiting.popleft()
            pending.attempts += 1
            if self._send_to_worker(worker.identity, protocol.W_REQUEST, pending.token, *pending.body):
                worker.in_flight.add(pending.token)
                pending.worker = worker.identity
                pending.tried.add(worker.identity)
            else:
                pending.attempts -= 1
                self._waiting.appendleft(pending)
                self._drop_worker(worker.identity, "could not be reached")

    # -- bookkeeping -------------------------------------------------------------------

    def _reject(self, message: str) -> None:
        self._rejected += 1
        self._throttle.log(log, logging.WARNING, "%s", message)

    def _count_oversized(self) -> None:
        self._reject("Dropped a message with too many frames")

    def _model_name(self) -> str | None:
        for worker in self._workers.values():
            return worker.ready.model
        return None

    def _liveness_s(self) -> float:
        return self.settings.heartbeat_ms * self.settings.liveness / 1000.0

    def info(self) -> dict:
        first = next(iter(self._workers.values()), None)
        # Only what describes the model and batching; live counters belong to the broker.
        base = first.ready.static_info() if first else {}
        base.update(
            {
                "ready": bool(self._workers),
                "model": self._model_name(),
                "broker": True,
                "workers": [{"pid": w.ready.pid, "capacity": w.capacity, "in_flight": len(w.in_flight)} for w in self._workers.values()],
                "in_flight": sum(len(w.in_flight) for w in self._workers.values()),
                "waiting": len(self._waiting),
                "queue_size": self.settings.queue_size,
                "requests_served": self._served,
                "retried": self._retried,
                "workers_lost": self._lost_workers,
                "deduplicated": self._deduplicated,
                "rejected_messages": self._rejected,
                "dropped_replies": self._dropped,
                "internal_errors": self._guard.count,
                "uptime_s": round(time.time() - self._started, 3),
                "version": __version__,
            }
        )
        return base


READY_MESSAGE = "Broker ready on"


def run_broker(settings: BrokerSettings) -> int:
    """Serve ``settings`` until SIGINT or SIGTERM (``python -m model_backend broker``; flags in cli.py)."""
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    broker = Broker(settings)
    front, back = broker.open()
    log.info("%s %s (workers connect to %s)", READY_MESSAGE, front, back)
    broker.serve(stop)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m model_backend broker ARGS`` (the parser is cli.py's, like every command's)."""
    from .cli import main as cli_main

    return cli_main(["broker", *(sys.argv[1:] if argv is None else argv)])
