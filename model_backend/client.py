"""BackendClient: the one way the dashboard (or anyone) talks to the model backend.

Importable without TensorFlow. Safe to call from many threads at once: each
call checks a DEALER socket out of a small pool, so concurrent calls are
concurrent requests (which the backend can batch) and no socket is ever used
by two threads. Replies are matched to requests by id; a stale reply left on
a reused socket is dropped.

Never waits forever (the ZeroMQ guide's Lazy Pirate pattern): sockets use
ZMQ_IMMEDIATE, so when no backend is connected within ``connect_timeout_ms``
the call raises :class:`BackendUnavailable` at once; when the backend takes
longer than ``timeout_ms`` to reply, the socket is closed with linger 0, a
fresh one is made and the request is resent, up to ``retries`` more times,
then :class:`BackendTimeout` is raised. Error replies become the typed errors
of :mod:`model_backend.errors`. A reply that is not a valid reply frame raises
:class:`BadReply` and that socket is thrown away.

Each pooled socket has a monitor that reports when its connection drops. A
request whose connection drops before the reply (the backend was killed, or
its reply was over ``protocol.MAX_REPLY_BYTES``, which cuts the connection
before it is buffered) is retried at once instead of after ``timeout_ms``, and
ends in :class:`BackendUnavailable` when no backend is back within
``connect_timeout_ms``: callers of a dead backend get their answer in about a
second, not after the reply timeout.

A retry resends the same request id, so the backend (or broker) answers a
request still in flight once instead of doing the work twice.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import zmq

from . import protocol
from . import security
from .errors import BackendTimeout, BackendUnavailable
from .sockets import limit_inbound
from .settings import ClientSettings

log = logging.getLogger(__name__)

MAX_IDLE_SOCKETS = 64


class BackendClient:
    """Classify images, ping and query a backend (or a broker in front of several)."""

    def __init__(self, settings: ClientSettings | None = None, *, context: zmq.Context | None = None):
        self.settings = settings or ClientSettings()
        self._context = context or zmq.Context.instance()
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    # -- public API ---------------------------------------------------------

    def classify(self, image_bytes: bytes, top_k: int = protocol.DEFAULT_TOP_K) -> dict:
        """Classify one encoded image (JPEG/PNG/... bytes). Returns the reply with ``roundtrip_ms`` added."""
        if not isinstance(image_bytes, (bytes, bytearray, memoryview)):
            raise TypeError(f"Expected image_bytes to be bytes. Received: {type(image_bytes).__name__}")
        started = time.perf_counter()
        reply = self.call(protocol.OP_CLASSIFY, top_k=top_k, image=bytes(image_bytes))
        reply["roundtrip_ms"] = round((time.perf_counter() - started) * 1000.0, 3)
        return reply

    def classify_reply(self, image_bytes: bytes, top_k: int = protocol.DEFAULT_TOP_K) -> protocol.ClassifyReply:
        """:meth:`classify`, validated into the typed :class:`~model_backend.protocol.ClassifyReply` (BadReply if it is not one)."""
        return protocol.ClassifyReply.from_wire(self.classify(image_bytes, top_k=top_k))

    def ping(self) -> dict:
        """Liveness and readiness, with a short timeout and no retry: ``{"ok": true, "ready": bool, "model": name}``."""
        return self.call(protocol.OP_PING)

    def info(self) -> dict:
        """Model name, input size, classes, batching settings, uptime, requests served."""
        return self.call(protocol.OP_INFO)

    def call(self, op: str, *, top_k: int = protocol.DEFAULT_TOP_K, image: bytes | None = None) -> dict:
        """Send any op of protocol.OP_SPECS with the timeout and retries its entry asks for; the reply dict."""
        spec = protocol.OP_SPECS[op]
        if spec.short_timeout:
            timeout = self.settings.ping_timeout_ms
            return self._call(op, timeout_ms=timeout, retries=0, connect_timeout_ms=min(timeout, self.settings.connect_timeout_ms))
        return self._call(op, top_k=top_k, image=image, retries=None if spec.retried else 0)

    def close(self) -> None:
        """Close every pooled socket (in-flight calls finish with their own sockets)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def __enter__(self) -> "BackendClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- the Lazy Pirate loop -------------------------------------------------

    def _call(
        self,
        op: str,
        *,
        top_k: int = protocol.DEFAULT_TOP_K,
        image: bytes | None = None,
        timeout_ms: int | None = None,
        retries: int | None = None,
        connect_timeout_ms: int | None = None,
    ) -> dict:
        timeout_ms = self.settings.timeout_ms if timeout_ms is None else timeout_ms
        retries = self.settings.retries if retries is None else retries
        connect_timeout_ms = self.settings.connect_timeout_ms if connect_timeout_ms is None else connect_timeout_ms
        request_id = uuid.uuid4().hex
        frames = [b""] + protocol.encode_request(request_id, op, top_k=top_k, image=image)
        address = self.settings.address
        lost = False
        for attempt in range(1, retries + 2):
            conn = self._checkout()
            conn.forget_disconnects()  # only a connection lost after this send means the request was lost
            # copy=True: a memcpy of the image costs far less than a forward pass, and zero-copy
            # sends would start pyzmq's garbage-collector thread in every process that uses the client.
            # The send is tried at once (a pooled socket is connected); with IMMEDIATE set it fails
            # (Again) while there is no connection, and only then does the caller wait for one.
            if not self._send(conn, frames, connect_timeout_ms):
                conn.close()
                raise BackendUnavailable(
                    f"No model backend is answering at {address} (waited {connect_timeout_ms} ms for a connection; "
                    "a backend that requires CURVE keys also refuses clients without them: --keys-dir). "
                    "Start it with `./run.sh backend` or `python -m model_backend serve`, or check the address."
                )
            try:
                reply = self._await_reply(conn, request_id, timeout_ms)
            except BaseException:  # BadReply (or an interrupt): this socket is not used again
                conn.close()
                raise
            if isinstance(reply, dict):
                self._checkin(conn)
                return protocol.raise_for_error(reply)
            # Lazy Pirate: the socket may hold a half-done exchange; throw it away.
            conn.close()
            lost = reply is _LOST
            if lost:
                log.warning("The connection to %s was lost while waiting for a reply (attempt %d of %d)", address, attempt, retries + 1)
            else:
                log.warning("No reply from %s within %d ms (attempt %d of %d)", address, timeout_ms, attempt, retries + 1)
        if lost:
            raise BackendUnavailable(
                f"The connection to the model backend at {address} broke before its reply arrived "
                f"({retries + 1} attempt{'s' if retries else ''}): the backend crashed or restarted, "
                f"or its reply was over the {protocol.MAX_REPLY_BYTES // 2**20} MiB limit."
            )
        raise BackendTimeout(
            f"The model backend at {address} did not reply within {timeout_ms} ms "
            f"({retries + 1} attempt{'s' if retries else ''}); it may be overloaded or stuck."
        )

    @staticmethod
    def _send(conn: "_Connection", frames: list[bytes], connect_timeout_ms: int) -> bool:
        """Send without blocking; False when no connection came within ``connect_timeout_ms``."""
        try:
            conn.sock.send_multipart(frames, flags=zmq.NOBLOCK, copy=True)
            return True
        except zmq.Again:
            pass
        if not conn.sock.poll(connect_timeout_ms, zmq.POLLOUT):
            return False
        conn.forget_disconnects()
        try:
            conn.sock.send_multipart(frames, flags=zmq.NOBLOCK, copy=True)
        except zmq.Again:
            return False
        return True

    @staticmethod
    def _await_reply(conn: "_Connection", request_id: str, timeout_ms: int) -> dict | object | None:
        """The reply to ``request_id``; None on timeout; ``_LOST`` when the connection drops first (the peer died)."""
        deadline = time.monotonic() + timeout_ms / 1000.0
        poller = conn.poller
        while True:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                return None
            events = dict(poller.poll(remaining_ms))
            if not events:
                return None
            if conn.sock in events:
                frames = conn.sock.recv_multipart()
                reply = protocol.decode_reply(frames[-1])
                if reply.get("id") == request_id:
                    return reply
                log.debug("Dropping a stale reply (id=%r, waiting for %s)", reply.get("id"), request_id)
            elif conn.forget_disconnects():
                return _LOST

    # -- the socket pool ----------------------------------------------------

    def _checkout(self) -> "_Connection":
        with self._lock:
            if self._closed:
                raise BackendUnavailable("This BackendClient has been closed.")
            if self._idle:
                return self._idle.pop()
        sock = monitor = None
        try:
            sock = self._context.socket(zmq.DEALER)
            security.secure_client(sock, self.settings.keys_dir, security.CLIENT)  # CURVE when a keys folder is set
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.IMMEDIATE, 1)
            sock.setsockopt(zmq.RECONNECT_IVL, 100)
            sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
            limit_inbound(sock, protocol.MAX_REPLY_BYTES)
            # A unique address: pyzmq's default names it after the socket's fd, which a socket closed by
            # another thread may still hold ("Address already in use").
            monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED, addr=f"inproc://warmserve-client-monitor-{uuid.uuid4().hex}")
            sock.connect(self.settings.address)
        except zmq.ZMQError as exc:  # e.g. out of file descriptors: a typed error, never a raw ZMQError
            for half_made in (monitor, sock):
                if half_made is not None:
                    half_made.close(linger=0)
            raise BackendUnavailable(f"Could not open a connection to the model backend at {self.settings.address}: {exc}.") from None
        return _Connection(sock, monitor)

    def _checkin(self, conn: "_Connection") -> None:
        with self._lock:
            if not self._closed and len(self._idle) < MAX_IDLE_SOCKETS:
                self._idle.append(conn)
                return
        conn.close()


#: what _await_reply returns when the connection dropped before the reply came
_LOST = object()


class _Connection:
    """A pooled DEALER socket and the monitor that tells when its connection drops (a backend killed mid-request)."""

    def __init__(self, sock: zmq.Socket, monitor: zmq.Socket):
        self.sock = sock
        self.monitor = monitor
        self.poller = zmq.Poller()  # made once: every call waits on the same two sockets
        self.poller.register(sock, zmq.POLLIN)
        self.poller.register(monitor, zmq.POLLIN)

    def forget_disconnects(self) -> bool:
        """Read the monitor's pending events; True if the connection dropped since the last call."""
        dropped = False
        while True:
            try:
                self.monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return dropped
            dropped = True

    def close(self) -> None:
        try:
            self.sock.disable_monitor()
        except zmq.ZMQError:
            pass
        self.monitor.close(linger=0)
        self.sock.close(linger=0)
