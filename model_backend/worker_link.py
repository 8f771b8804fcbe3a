"""A backend worker's side of the link to the broker (the Majordomo worker API, reduced to what we need).

The server hands this object its DEALER socket (connected to the broker's
worker endpoint) and uses it like its own ROUTER front: ``receive()`` yields
``(envelope, body)`` pairs and ``send(envelope, reply)`` answers one. Control
traffic stays in here:

* READY (with the worker's model, batching facts and capacity) on start, when
  the broker says DISCONNECT (it does not know us: it restarted or dropped us),
  and when the broker has been silent for ``liveness`` heartbeats;
* HEARTBEAT every ``heartbeat_ms``; DISCONNECT when the worker stops, so the
  broker re-queues what this worker still holds at once.

:class:`WorkerLinks` bundles one link per broker for a worker that serves
several (``--connect A,B``): a request is answered through the link it came on.

Every message is checked with :func:`protocol.parse_worker_message`: anything
that is not a well-formed broker command is dropped and logged. Sends never
block (a DEALER whose broker is gone would otherwise block forever): what the
broker cannot take now is dropped and counted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import zmq

from . import protocol
from .errors import BadRequest
from .sockets import Throttle, drain, readable, send_nowait

log = logging.getLogger(__name__)


class WorkerLink:
    """Talks the worker side of the broker protocol over one connected DEALER socket."""

    def __init__(self, sock: zmq.Socket, address: str, heartbeat_ms: int, ready_payload: Callable[[], bytes], liveness: int = 3):
        self.socket = sock
        self.address = address
        self._interval_s = heartbeat_ms / 1000.0
        self._liveness_s = liveness * self._interval_s
        self._ready_payload = ready_payload
        self._broker_seen = time.monotonic()
        self._next_heartbeat = time.monotonic() + self._interval_s
        self.dropped = 0
        self.rejected = 0
        self.oversized = 0
        self._throttle = Throttle()

    def start(self) -> None:
        self.send_ready()

    def send_ready(self) -> None:
        self._send(protocol.encode_worker_message(protocol.W_READY, self._ready_payload()))
        self._broker_seen = time.monotonic()

    def receive(self, limit: int = 256) -> Iterator[tuple[list[bytes], list[bytes]]]:
        """The broker's requests waiting now, as (reply envelope, request body); control messages are handled here."""
        for frames in drain(self.socket, limit=limit, max_frames=3 + protocol.MAX_REQUEST_FRAMES, on_oversized=self._count_oversized):
            try:
                message = protocol.parse_worker_message(frames, sender="broker")
            except BadRequest as exc:
                self.rejected += 1
                self._throttle.log(log, logging.WARNING, "Dropping a message on the broker link: %s", exc.message)
                continue
            self._broker_seen = time.monotonic()
            if message.command == protocol.W_DISCONNECT:  # the broker does not know us (it restarted or dropped us)
                log.info("The broker at %s asked this worker to register again", self.address)
                self.send_ready()
            elif message.command == protocol.W_REQUEST:
                token, body = message.frames[0], list(message.frames[1:])
                yield protocol.encode_worker_message(protocol.W_REPLY, token), body

    def send(self, envelope: list[bytes], reply: bytes) -> bool:
        return self._send(envelope + [reply])

    def tick(self, now: float) -> None:
        """Heartbeat when due; register again when the broker has been silent too long."""
        if now < self._next_heartbeat:
            return
        self._next_heartbeat = now + self._interval_s
        self._send(protocol.encode_worker_message(protocol.W_HEARTBEAT))
        silent_s = now - self._broker_seen
        if silent_s > self._liveness_s:
            log.warning("No word from the broker at %s for %.1f s; registering again", self.address, silent_s)
            self.send_ready()

    def close(self) -> None:
        """Say goodbye (without waiting) and close the socket."""
        if self.socket.closed:
            return
        self._send(protocol.encode_worker_message(protocol.W_DISCONNECT))
        self.socket.close(linger=200)  # time to flush the last replies and the goodbye; close itself never blocks

    def _send(self, frames: list[bytes]) -> bool:
        if send_nowait(self.socket, frames):
            return True
        self.dropped += 1
        return False

    def _count_oversized(self) -> None:
        self.oversized += 1
        self._throttle.log(log, logging.WARNING, "Dropping a message with too many frames from the broker link")


class WorkerLinks:
    """One worker serving several brokers: a :class:`WorkerLink` per broker, used like one front.

    ``receive()`` yields each request with the index of its link put in front
    of its envelope, and ``send()`` takes it off again to answer through the
    same link: a request is always answered by the broker that sent it. The
    server polls every socket of :attr:`sockets`.
    """

    def __init__(self, links: list[WorkerLink]):
        if not links or len(links) > 255:
            raise ValueError(f"Expected 1 to 255 broker links. Received: {len(links)}")
        self.links = links
        self.sockets = [link.socket for link in links]

    def start(self) -> None:
        for link in self.links:
            link.start()

    def receive(self, limit: int = 256) -> Iterator[tuple[list[bytes], list[bytes]]]:
        """Every link's waiting requests (at most ``limit`` from each), envelopes tagged with their link."""
        for index, link in enumerate(self.links):
            tag = bytes([index])
            for envelope, body in link.receive(limit=limit):
                yield [tag, *envelope], body

    def send(self, envelope: list[bytes], reply: bytes) -> bool:
        return self.links[envelope[0][0]].send(envelope[1:], reply)

    def pending(self) -> bool:
        """Whether any link has a message waiting (a request or the broker's control traffic)."""
        return any(readable(sock) for sock in self.sockets)

    def tick(self, now: float) -> None:
        for link in self.links:
            link.tick(now)

    def close(self) -> None:
        for link in self.links:
            link.close()

    @property
    def dropped(self) -> int:
        return sum(link.dropped for link in self.links)

    @property
    def rejected(self) -> int:
        return sum(link.rejected for link in self.links)

    @property
    def oversized(self) -> int:
        return sum(link.oversized for link in self.links)
