"""The broker: several backend workers behind one address (scale-out). Clients do not change.

    clients (DEALER/REQ) --> ROUTER frontend   [broker]   ROUTER backend <-- workers (DEALER, `serve --connect`)

A credit-based variant of the ZeroMQ guide's load-balancing broker:

* A worker registers with ``[READY, json]`` (its model, batching settings and
  ``capacity``: how many requests it takes at once so it can batch them). The
  broker hands each request to the worker with the most free capacity, so a
  busy worker is not handed more work; when every worker is full, requests
  wait in the broker (up to ``queue_size``, then ``overloaded`` at once).
* Workers and broker exchange heartbeats. A worker silent for
  ``liveness`` heartbeats is taken out of rotation and each of its in-flight
  requests is retried once on another worker, else answered with an
  ``unavailable`` error: never silence. A new worker joins at any time.
* ``ping`` and ``info`` are answered by the broker itself (ready = at least
  one worker); ``classify`` goes to a worker.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

import zmq

from . import __version__, protocol
from .errors import BackendUnavailable, BadRequest, NotReady, Overloaded
from .settings import DEFAULT_ADDRESS, DEFAULT_BROKER_BACKEND, BrokerSettings, SettingsError
from .sockets import drain

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    """A classify request the broker holds: where it came from and its frames."""

    envelope: list[bytes]
    body: list[bytes]
    request_id: str | None
    attempts: int = 0


@dataclass
class _Worker:
    identity: bytes
    capacity: int
    info: dict
    expires: float
    in_flight: dict[tuple, _Pending] = field(default_factory=dict)

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
        self._started = time.time()
        self._served = 0
        self._retried = 0
        self._lost_workers = 0
        self.frontend_endpoint: str | None = None
        self.backend_endpoint: str | None = None

    def open(self) -> tuple[str, str]:
        self._front = self._context.socket(zmq.ROUTER)
        self._front.setsockopt(zmq.LINGER, 0)
        self._front.bind(self.settings.frontend)
        self._back = self._context.socket(zmq.ROUTER)
        self._back.setsockopt(zmq.LINGER, 0)
        self._back.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self._back.bind(self.settings.backend)
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
                events = dict(poller.poll(min(200, self.settings.heartbeat_ms)))
                if self._back in events:
                    self._from_workers()
                if self._front in events:
                    self._from_clients()
                now = time.monotonic()
                if now >= next_heartbeat:
                    self._send_heartbeats()
                    self._expire_workers(now)
                    next_heartbeat = now + interval
        finally:
            self._front.close(linger=0)
            self._back.close(linger=0)
            log.info("Broker stopped after %d replies (%d retried, %d workers lost)", self._served, self._retried, self._lost_workers)

    # -- workers -------------------------------------------------------------------

    def _from_workers(self) -> None:
        for frames in drain(self._back):
            identity, rest = frames[0], frames[1:]
            if not rest:
                continue
            if rest[0] == protocol.WORKER_READY:
                self._register(identity, rest[1] if len(rest) > 1 else b"{}")
                continue
            worker = self._workers.get(identity)
            if worker is None and rest[0] == protocol.WORKER_HEARTBEAT:
                # A worker we dropped (or from before a broker restart): ask it to register again.
                self._send_to_worker(identity, [protocol.WORKER_READY])
                continue
            if worker is not None:
                worker.expires = time.monotonic() + self._liveness_s()
            if rest[0] != protocol.WORKER_HEARTBEAT:
                self._forward_reply(worker, envelope=rest[:-1], reply=rest[-1])
        self._dispatch()  # replies freed capacity: hand waiting requests out now

    def _forward_reply(self, worker: _Worker | None, envelope: list[bytes], reply: bytes) -> None:
        """A worker's reply goes to its client (also a late one from a dropped worker)."""
        if worker is not None:
            worker.in_flight.pop((tuple(envelope), _reply_id(reply)), None)
        self._front.send_multipart(envelope + [reply])
        self._served += 1

    def _register(self, identity: bytes, payload: bytes) -> None:
        try:
            info = json.loads(payload.decode("utf-8"))
            capacity = int(info.get("capacity", 1))
        except (ValueError, UnicodeDecodeError, AttributeError):
            log.warning("Ignoring a READY with an unreadable payload")
            return
        capacity = max(1, min(capacity, 4096))
        if identity in self._workers:
            self._workers[identity].expires = time.monotonic() + self._liveness_s()
            return
        self._workers[identity] = _Worker(identity, capacity, info, time.monotonic() + self._liveness_s())
        log.info("Worker joined: model=%s pid=%s capacity=%d (%d workers)", info.get("model"), info.get("pid"), capacity, len(self._workers))
        self._dispatch()

    def _send_heartbeats(self) -> None:
        for identity in list(self._workers):
            self._send_to_worker(identity, [protocol.WORKER_HEARTBEAT])

    def _send_to_worker(self, identity: bytes, frames: list[bytes]) -> bool:
        try:
            self._back.send_multipart([identity, *frames], zmq.NOBLOCK)
            return True
        except (zmq.Again, zmq.ZMQError):
            return False

    def _expire_workers(self, now: float) -> None:
        for identity, worker in list(self._workers.items()):
            if worker.expires < now:
                self._drop_worker(identity, "stopped sending heartbeats")

    def _drop_worker(self, identity: bytes, why: str) -> None:
        worker = self._workers.pop(identity)
        self._lost_workers += 1
        log.warning("Worker pid=%s %s; taken out of rotation with %d requests in flight", worker.info.get("pid"), why, len(worker.in_flight))
        for pending in worker.in_flight.values():
            if pending.attempts <= self.settings.retries and self._workers:
                self._retried += 1
                self._waiting.appendleft(pending)
            else:
                error = BackendUnavailable("The worker handling this request stopped answering; please retry.")
                self._front.send_multipart(pending.envelope + [protocol.encode_error(pending.request_id, error)])
        self._dispatch()

    # -- clients -------------------------------------------------------------------

    def _from_clients(self) -> None:
        for frames in drain(self._front):
            envelope, body = protocol.split_envelope(frames)
            header = protocol.peek_header(body)
            if header.get("op") in (protocol.OP_PING, protocol.OP_INFO):
                self._answer_locally(envelope, body)
                continue
            request_id = protocol.request_id_of(header)
            if len(self._waiting) >= self.settings.queue_size:
                error = Overloaded(f"All workers are busy and {len(self._waiting)} requests are waiting; try again shortly.")
                self._front.send_multipart(envelope + [protocol.encode_error(request_id, error)])
                continue
            self._waiting.append(_Pending(envelope, body, request_id))
        self._dispatch()

    def _answer_locally(self, envelope: list[bytes], body: list[bytes]) -> None:
        """ping and info are the broker's to answer: they describe the whole pool."""
        try:
            request = protocol.parse_request(body)
        except BadRequest as exc:
            self._front.send_multipart(envelope + [protocol.encode_error(protocol.request_id_of(body), exc)])
            return
        if request.op == protocol.OP_PING:
            payload = {"ready": bool(self._workers), "model": self._model_name(), "workers": len(self._workers)}
        else:
            payload = self.info()
        self._front.send_multipart(envelope + [protocol.encode_reply(request.id, payload)])

    def _dispatch(self) -> None:
        while self._waiting:
            if not self._workers:
                # No worker at all: answer instead of letting requests wait for one that may never come.
                while self._waiting:
                    pending = self._waiting.popleft()
                    error = NotReady("No model worker is connected to the broker yet; start one with `python -m model_backend serve --connect ...`.")
                    self._front.send_multipart(pending.envelope + [protocol.encode_error(pending.request_id, error)])
                return
            worker = max(self._workers.values(), key=lambda w: w.free)
            if worker.free <= 0:
                return
            pending = self._waiting.popleft()
            pending.attempts += 1
            if self._send_to_worker(worker.identity, pending.envelope + pending.body):
                worker.in_flight[(tuple(pending.envelope), pending.request_id)] = pending
            else:
                self._waiting.appendleft(pending)
                self._drop_worker(worker.identity, "could not be reached")

    def _model_name(self) -> str | None:
        for worker in self._workers.values():
            return worker.info.get("model")
        return None

    def _liveness_s(self) -> float:
        return self.settings.heartbeat_ms * self.settings.liveness / 1000.0

    def info(self) -> dict:
        first = next(iter(self._workers.values()), None)
        # Only what describes the model and batching; live counters belong to the broker.
        static = ("input_size", "num_classes", "max_batch", "max_wait_ms", "max_image_bytes", "decode_threads")
        base = {key: first.info[key] for key in static if first and key in first.info}
        base.update(
            {
                "ready": bool(self._workers),
                "model": self._model_name(),
                "broker": True,
                "workers": [
                    {"pid": w.info.get("pid"), "capacity": w.capacity, "in_flight": len(w.in_flight)} for w in self._workers.values()
                ],
                "in_flight": sum(len(w.in_flight) for w in self._workers.values()),
                "waiting": len(self._waiting),
                "queue_size": self.settings.queue_size,
                "requests_served": self._served,
                "retried": self._retried,
                "workers_lost": self._lost_workers,
                "uptime_s": round(time.time() - self._started, 3),
                "version": __version__,
            }
        )
        return base


def _reply_id(reply: bytes) -> str | None:
    try:
        return json.loads(reply.decode("utf-8")).get("id")
    except Exception:  # noqa: BLE001
        return None


READY_MESSAGE = "Broker ready on"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model_backend broker", description="Several backend workers behind one address.")
    parser.add_argument("--frontend", default=DEFAULT_ADDRESS, help=f"address clients connect to (default {DEFAULT_ADDRESS})")
    parser.add_argument("--backend", default=DEFAULT_BROKER_BACKEND, help=f"address workers connect to (default {DEFAULT_BROKER_BACKEND})")
    parser.add_argument("--queue-size", type=int, default=1024)
    parser.add_argument("--heartbeat-ms", type=int, default=1000)
    parser.add_argument("--liveness", type=int, default=3, help="missed heartbeats before a worker is dropped")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        settings = BrokerSettings(args.frontend, args.backend, args.queue_size, args.heartbeat_ms, args.liveness)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    broker = Broker(settings)
    front, back = broker.open()
    log.info("%s %s (workers connect to %s)", READY_MESSAGE, front, back)
    broker.serve(stop)
    return 0
