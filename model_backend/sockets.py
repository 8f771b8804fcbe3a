"""Small ZeroMQ helpers shared by the server, the worker link and the broker.

Their I/O loops read and write sockets the same way:

* :func:`drain` takes the messages waiting now, bounded in number, and drops
  (without keeping their bytes) any message with more frames than the caller
  accepts: ``ZMQ_MAXMSGSIZE`` bounds each frame, this bounds the count.
* :func:`readable` says whether a message waits, without reading it.
* :func:`send_nowait` never blocks a loop: a peer that is gone or too slow
  costs one dropped message, counted by the caller, never a wedged process.
* :func:`limit_inbound` sets the size bounds on a socket that receives from
  peers that are not trusted.
* :class:`LoopGuard` is what a loop does with an exception it did not expect
  while handling one message: log it (rate-limited), count it, carry on;
  :class:`Throttle` rate-limits the log lines a peer can trigger at will.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import zmq

#: messages a socket may queue per peer on the way in (each at most its frame limit)
DEFAULT_RCVHWM = 256


def limit_inbound(sock: zmq.Socket, max_frame_bytes: int, rcvhwm: int = DEFAULT_RCVHWM) -> None:
    """Disconnect a peer that sends a frame over ``max_frame_bytes`` (before it is buffered) and bound the queue."""
    sock.setsockopt(zmq.MAXMSGSIZE, int(max_frame_bytes))
    sock.setsockopt(zmq.RCVHWM, int(rcvhwm))


def recv_bounded(sock: zmq.Socket, max_frames: int) -> list[bytes] | None:
    """One waiting message (zmq.Again when there is none); None when it had more than ``max_frames`` frames.

    A multipart message arrives whole, so once its first frame is readable the
    rest is too; the frames past the limit are read and freed without copying.
    """
    frames = [sock.recv(zmq.NOBLOCK)]
    too_many = False
    while sock.getsockopt(zmq.RCVMORE):
        if len(frames) < max_frames:
            frames.append(sock.recv(zmq.NOBLOCK))
        else:
            sock.recv(zmq.NOBLOCK, copy=False)
            too_many = True
    return None if too_many else frames


def drain(sock: zmq.Socket, limit: int = 1024, max_frames: int = 64, on_oversized=None) -> Iterator[list[bytes]]:
    """The messages waiting on ``sock`` right now, at most ``limit`` of them, without blocking.

    The limit keeps one busy socket from starving the others a loop polls.
    Messages of more than ``max_frames`` frames are dropped (``on_oversized()`` is called for each).
    """
    for _ in range(limit):
        try:
            frames = recv_bounded(sock, max_frames)
        except zmq.Again:
            return
        if frames is None:
            if on_oversized is not None:
                on_oversized()
            continue
        yield frames


def readable(sock: zmq.Socket) -> bool:
    """Whether a message is waiting on ``sock`` now (ZMQ_EVENTS; without reading or blocking)."""
    return bool(sock.getsockopt(zmq.EVENTS) & zmq.POLLIN)


def send_nowait(sock: zmq.Socket, frames: list[bytes]) -> bool:
    """Send without ever blocking; False (message dropped) when the peer cannot take it now or is unknown."""
    try:
        sock.send_multipart(frames, zmq.NOBLOCK)
        return True
    except zmq.Again:
        return False
    except zmq.ZMQError as exc:
        if exc.errno == zmq.EHOSTUNREACH:  # ROUTER_MANDATORY: that peer is not connected
            return False
        raise


class Throttle:
    """Rate-limits one kind of log line a peer can trigger at will (bad requests, rogue worker messages)."""

    def __init__(self, interval_s: float = 1.0):
        self._interval_s = interval_s
        self._last = float("-inf")
        self.suppressed = 0

    def log(self, logger: logging.Logger, level: int, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last < self._interval_s:
            self.suppressed += 1
            return
        if self.suppressed:
            message += f" ({self.suppressed} similar lines suppressed)"
        self._last, self.suppressed = now, 0
        logger.log(level, message, *args)


class LoopGuard:
    """Counts and logs (at most one full traceback per ``interval_s``) the unexpected errors of one loop."""

    def __init__(self, logger: logging.Logger, interval_s: float = 5.0):
        self._log = logger
        self._interval_s = interval_s
        self._last = float("-inf")
        self._suppressed = 0
        self._lock = threading.Lock()  # the server's decode and inference threads share one guard
        self.count = 0

    def record(self, what: str) -> None:
        """Call from an ``except`` block: the loop survives, the error is counted and (rate-limited) logged."""
        with self._lock:
            self.count += 1
            now = time.monotonic()
            report = now - self._last >= self._interval_s
            suppressed = self._suppressed
            if report:
                self._last, self._suppressed = now, 0
            else:
                self._suppressed += 1
        if report:
            more = f" ({suppressed} more since the last report)" if suppressed else ""
            self._log.exception("Unexpected error while %s; the loop goes on%s", what, more)
