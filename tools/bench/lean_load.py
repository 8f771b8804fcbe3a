"""The lean load generator: one thread keeps N requests in flight, so that the load generator, which
shares the machine's cores with the service it measures, takes as little of them as it can.

With one thread per in-flight request (:func:`tools.bench.load.run_load`), every
reply wakes a thread that then queues for the GIL: at c=16 that cost the bench
0.3-0.4 ms of CPU per request, about 4% of this 2-core machine at 260 images/s,
taken from the service being measured (in production the clients run elsewhere).
Here one thread polls every connection (``zmq.Poller``, which takes ZeroMQ
sockets and plain TCP sockets alike) and sends the next request as soon as one
is answered. Each request is timed from its send to its complete reply, as the
threaded generator times it.

Channels speak the real protocols and check what comes back as a client must:

* :class:`ZmqChannel`: one DEALER socket for all N (the backend's ROUTER answers
  each on the connection it came on; replies are matched by request id), the request encoded by
  :func:`model_backend.protocol.encode_request` and the reply read by
  :func:`~model_backend.protocol.decode_reply` and
  :func:`~model_backend.protocol.raise_for_error` (the client library's own
  encoding and checks, without its pool and failover, which one address does not need);
* :class:`HttpChannel`: one keep-alive HTTP/1.1 connection, a multipart body with
  a fresh boundary per request (as browsers and HTTP libraries send), the
  response read by its ``Content-Length`` and parsed as JSON; any status but 200
  is an error.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import zmq

from model_backend import protocol

from .plan import REQUEST_TIMEOUT_MS, BenchError

#: the largest HTTP response head read before it is refused as not an answer of the API
MAX_HEAD_BYTES = 64 * 1024


class ZmqChannel:
    """One DEALER socket carrying every request in flight (a ROUTER answers each on the connection it came
    on, matched here by request id), so one poll and one drain serve them all."""

    def __init__(self, context: zmq.Context, address: str, image: bytes, capacity: int):
        self._image = image
        self.capacity = capacity
        self._waiting: set[str] = set()
        self.pollable = context.socket(zmq.DEALER)
        self.pollable.setsockopt(zmq.LINGER, 0)
        self.pollable.connect(address)
        self.poll_key = self.pollable  # what zmq.Poller.poll returns for it

    def send(self) -> str:
        request_id = uuid.uuid4().hex
        self._waiting.add(request_id)
        self.pollable.send_multipart([b""] + protocol.encode_request(request_id, protocol.OP_CLASSIFY, image=self._image), copy=True)
        return request_id

    def receive(self) -> list[tuple[str, dict | Exception]]:
        """Every reply that is here now: (request id, the reply, or the error it carried)."""
        done = []
        while True:
            try:
                frames = self.pollable.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return done
            reply = protocol.decode_reply(frames[-1])
            request_id = reply.get("id")
            if request_id not in self._waiting:
                raise BenchError(f"A reply to no request in flight (id={str(request_id)[:40]!r})")
            self._waiting.discard(request_id)
            try:
                done.append((request_id, protocol.raise_for_error(reply)))
            except Exception as exc:  # noqa: BLE001 - an error reply: that request failed, the socket is fine
                done.append((request_id, exc))

    def close(self) -> None:
        self.pollable.close(linger=0)


class HttpChannel:
    """One keep-alive HTTP/1.1 connection POSTing the image as a multipart field ``image``, one request at a time."""

    capacity = 1

    def __init__(self, url: str, image: bytes, filename: str, content_type: str):
        parts = urlsplit(url)
        self._path, self._host = parts.path or "/", parts.netloc
        self._image, self._filename, self._content_type = image, filename, content_type
        self.pollable = socket.create_connection((parts.hostname, parts.port or 80), timeout=REQUEST_TIMEOUT_MS / 1000)
        self.pollable.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.poll_key = self.pollable.fileno()  # zmq.Poller.poll returns a plain socket's descriptor
        self._buffer = bytearray()
        self._sent = 0

    def send(self) -> int:
        boundary = uuid.uuid4().hex
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{self._filename}\"\r\n"
                f"Content-Type: {self._content_type}\r\n\r\n").encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        length = len(head) + len(self._image) + len(tail)
        request = (f"POST {self._path} HTTP/1.1\r\nHost: {self._host}\r\nContent-Type: multipart/form-data; "
                   f"boundary={boundary}\r\nContent-Length: {length}\r\nConnection: keep-alive\r\n\r\n").encode()
        self._buffer.clear()
        self.pollable.sendall(b"".join((request, head, self._image, tail)))
        self._sent += 1
        return self._sent

    def receive(self) -> list[tuple[int, dict | Exception]]:
        """The answer once the whole response is here (empty: not yet); a status but 200 is that request's error.
        A broken connection or a response that is not HTTP raises (the caller replaces the connection)."""
        try:
            chunk = self.pollable.recv(256 * 1024, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return []
        if not chunk:
            raise BenchError("The server closed the connection before its response was complete")
        self._buffer += chunk
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                raise BenchError(f"No end of the response head within {MAX_HEAD_BYTES} bytes")
            return []
        status, length = _status_and_length(bytes(self._buffer[:end]))
        body = self._buffer[end + 4:]
        if len(body) < length:
            return []
        if len(body) > length:
            raise BenchError(f"{len(body) - length} bytes after the response body (one request was in flight)")
        if status != 200:
            return [(self._sent, BenchError(f"HTTP {status}: {bytes(body[:200])!r}"))]
        return [(self._sent, json.loads(body))]

    def close(self) -> None:
        self.pollable.close()


def _status_and_length(head: bytes) -> tuple[int, int]:
    """Status code and Content-Length of an HTTP/1.1 response head (chunked answers are not the API's)."""
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError):
        raise BenchError(f"Not an HTTP status line: {lines[0][:100]!r}") from None
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
        elif name.strip().lower() == "transfer-encoding":
            raise BenchError(f"Expected a response with a Content-Length. Received: Transfer-Encoding {value.strip()}")
    if length is None:
        raise BenchError("Expected a response with a Content-Length. Received: none")
    return status, length


@dataclass(frozen=True)
class Channels:
    """How to open one connection of a lean run (given how many requests the run keeps in flight);
    ``describe`` names the generator in the bench's output."""

    open: Callable[[int], ZmqChannel | HttpChannel]
    describe: str


def zmq_channels(address: str, image: bytes, context: zmq.Context | None = None) -> Channels:
    shared = context or zmq.Context.instance()
    return Channels(lambda concurrency: ZmqChannel(shared, address, image, concurrency),
                    "one thread, one DEALER socket carrying every request in flight")


def http_channels(url: str, image: bytes, filename: str = "chelsea.jpg", content_type: str = "image/jpeg") -> Channels:
    return Channels(lambda concurrency: HttpChannel(url, image, filename, content_type),
                    "one thread, one keep-alive HTTP/1.1 connection per request in flight")


def run_multiplexed(channels: Channels, concurrency: int, requests: int, result) -> None:
    """``requests`` requests, ``concurrency`` at a time, from this one thread, into ``result``
    (a :class:`tools.bench.load.LoadResult`: latencies, replies, errors, wall time).

    Each answered request is followed at once by the next on the same
    connection. An error answer counts as that request's error; a connection
    that breaks (or answers what is not a response) counts one error and is
    replaced by a fresh one. No reply for :data:`~tools.bench.plan.REQUEST_TIMEOUT_MS`
    stops the run with a BenchError.
    """
    poller = zmq.Poller()
    live: dict[object, object] = {}  # poll key -> channel
    sent_at: dict[tuple[object, object], float] = {}  # (channel, request key) -> send time
    to_send, in_flight = requests, 0

    def start(channel) -> None:
        nonlocal to_send, in_flight
        to_send, in_flight = to_send - 1, in_flight + 1
        started = time.perf_counter()
        sent_at[(channel, channel.send())] = started

    def add():
        channel = channels.open(concurrency)
        live[channel.poll_key] = channel
        poller.register(channel.pollable, zmq.POLLIN)
        return channel

    def retire(channel) -> None:
        poller.unregister(channel.pollable)
        del live[channel.poll_key]
        channel.close()

    try:
        try:
            opened = [add()]
            while sum(each.capacity for each in opened) < min(concurrency, requests):
                opened.append(add())
        except (OSError, zmq.ZMQError) as exc:
            raise BenchError(f"The load generator could not start: {type(exc).__name__}: {exc}") from None
        started = time.perf_counter()
        budget = min(concurrency, requests)
        for channel in opened:
            for _ in range(min(channel.capacity, budget)):
                start(channel)
                budget -= 1
        while in_flight:
            events = poller.poll(REQUEST_TIMEOUT_MS)
            if not events:
                raise BenchError(f"No reply within {REQUEST_TIMEOUT_MS} ms ({in_flight} requests in flight)")
            for poll_key, _ in events:
                channel = live.get(poll_key)
                if channel is None:  # replaced earlier in this round
                    continue
                answered_on = channel
                try:
                    done = channel.receive()
                except Exception as exc:  # noqa: BLE001 - a broken connection: its requests failed, a new one goes on
                    lost = [key for key in sent_at if key[0] is channel]
                    for key in lost:
                        del sent_at[key]
                    in_flight -= len(lost)
                    result.errors.extend([f"{type(exc).__name__}: {exc}"[:300]] * len(lost))
                    retire(channel)
                    channel = add()
                    done = [(None, None)] * len(lost)  # one follow-up request per lost one
                for key, reply in done:
                    if key is not None:
                        in_flight -= 1
                        sent = sent_at.pop((answered_on, key))
                        if isinstance(reply, Exception):
                            result.errors.append(f"{type(reply).__name__}: {reply}"[:300])
                        else:
                            result.latencies_ms.append((time.perf_counter() - sent) * 1000.0)
                            result.replies.append(reply)
                    if to_send > 0:
                        start(channel)
        result.wall_s = time.perf_counter() - started
    finally:
        for channel in list(live.values()):
            channel.close()
