"""Small ZeroMQ helpers shared by the server and the broker (their I/O loops read sockets the same way)."""

from __future__ import annotations

from collections.abc import Iterator

import zmq


def drain(sock: zmq.Socket, limit: int = 1024) -> Iterator[list[bytes]]:
    """The messages waiting on ``sock`` right now, at most ``limit`` of them, without blocking.

    The limit keeps one busy socket from starving the others a loop polls.
    """
    for _ in range(limit):
        try:
            yield sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return
