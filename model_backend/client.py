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

Failover: ``ClientSettings.address`` may list several backends or brokers
(comma-separated). A call starts at the address that answered last; when that
one is unavailable (no connection within ``connect_timeout_ms``, or the
connection lost before the reply, or an ``unavailable`` / ``not_ready`` error
reply: stopping, or a broker without workers) the same request (same id) goes
to the next one, within the same call; :class:`BackendUnavailable` names every address
once all have failed. ``ping`` and ``info``, which a broker answers itself, fail
over the same way when the answer is ``"ready": false`` (a broker up without
workers); when no address is ready, the call returns the first such answer.
A timeout is retried at the same address (Lazy Pirate): that backend is up,
only slow. The pool keeps sockets per address.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import zmq

from . import protocol
from . import security
from .errors import BackendTimeout, BackendUnavailable, NotReady
from .sockets import limit_inbound
from .settings import ClientSettings

log = logging.getLogger(__name__)

MAX_IDLE_SOCKETS = 64


class BackendClient:
    """Classify images, ping and query a backend (or a broker in front of several)."""

    def __init__(self, settings: ClientSettings | None = None, *, context: zmq.Context | None = None):
        self.settings = settings or ClientSettings()
        self._context = context or zmq.Context.instance()
        self._idle: list[_Connection] = []  # each knows its address; a call takes one for the address it tries
        self._lock = threading.Lock()
        self._closed = False
        self._preferred: str | None = None  # the address that answered last: calls start there

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
        route = _Route(self.settings.addresses, self._preferred, retries + 1)
        while True:
            address = route.current
            outcome = self._attempt(address, frames, request_id, timeout_ms, connect_timeout_ms)
            refusal = _refusal(op, outcome) if isinstance(outcome, dict) and len(route.addresses) > 1 else None
            if isinstance(outcome, dict) and refusal is None:
                self._preferred = address
                return protocol.raise_for_error(outcome)
            if isinstance(outcome, dict):  # this one cannot serve it now (stopping, no worker): another may
                route.refused[address] = refusal
                if outcome.get("ok"):  # a ping/info "up, not ready": kept in case no address is ready
                    route.unready_reply = route.unready_reply or outcome
                else:
                    route.last_reply = outcome
                outcome = _REFUSED
            route.spend(outcome)
            if outcome is _TIMEOUT:
                log.warning("No reply from %s within %d ms (attempt %d of %d)", address, timeout_ms, route.tries(address), retries + 1)
                if route.left(address):
                    continue  # Lazy Pirate: the same request again, on a fresh socket, to the same address
                raise BackendTimeout(
                    f"The model backend at {address} did not reply within {timeout_ms} ms "
                    f"({retries + 1} attempt{'s' if retries else ''}); it may be overloaded or stuck."
                )
            if outcome is _LOST:
                log.warning("The connection to %s was lost while waiting for a reply (attempt %d of %d)", address, route.tries(address), retries + 1)
            following = route.next()
            if following is None:
                if route.unready_reply is not None:
                    return route.unready_reply  # up somewhere, ready nowhere: say that, as one address would
                if all(route.outcome.get(each) is _REFUSED for each in route.addresses):
                    protocol.raise_for_error(route.last_reply)  # every one said the same kind of "not now": say it as they did
                raise self._unavailable(route, connect_timeout_ms, retries)
            if following != address:
                log.warning("%s is unavailable; failing over to %s", address, following)
                if self._preferred in (None, address):
                    self._preferred = following  # calls starting now skip it instead of waiting for its connection too

    def _attempt(self, address: str, frames: list[bytes], request_id: str, timeout_ms: int, connect_timeout_ms: int) -> dict | object:
        """One send and wait at ``address``: the reply dict, or ``_UNREACHABLE``, ``_LOST`` or ``_TIMEOUT``."""
        conn = self._checkout(address)
        conn.forget_disconnects()  # only a connection lost after this send means the request was lost
        # copy=True: a memcpy of the image costs far less than a forward pass, and zero-copy
        # sends would start pyzmq's garbage-collector thread in every process that uses the client.
        # The send is tried at once (a pooled socket is connected); with IMMEDIATE set it fails
        # (Again) while there is no connection, and only then does the caller wait for one.
        if not self._send(conn, frames, connect_timeout_ms):
            conn.close()
            return _UNREACHABLE
        try:
            reply = self._await_reply(conn, request_id, timeout_ms)
        except BaseException:  # BadReply (or an interrupt): this socket is not used again
            conn.close()
            raise
        if isinstance(reply, dict):
            self._checkin(conn)
            return reply
        conn.close()  # Lazy Pirate: the socket may hold a half-done exchange; throw it away
        return _TIMEOUT if reply is None else reply

    @staticmethod
    def _unavailable(route: "_Route", connect_timeout_ms: int, retries: int) -> BackendUnavailable:
        """The error when every address failed: each one named with what happened to it."""
        if len(route.addresses) == 1 and route.last is _UNREACHABLE:
            address = route.addresses[0]
            return BackendUnavailable(
                f"No model backend is answering at {address} (waited {connect_timeout_ms} ms for a connection; "
                "a backend that requires CURVE keys also refuses clients without them: --keys-dir). "
                "Start it with `./run.sh backend` or `python -m model_backend serve`, or check the address."
            )
        if len(route.addresses) == 1:
            address = route.addresses[0]
            return BackendUnavailable(
                f"The connection to the model backend at {address} broke before its reply arrived "
                f"({retries + 1} attempt{'s' if retries else ''}): the backend crashed or restarted, "
                f"or its reply was over the {protocol.MAX_REPLY_BYTES // 2**20} MiB limit."
            )
        what = {
            _UNREACHABLE: f"no connection within {connect_timeout_ms} ms",
            _LOST: "the connection broke before the reply",
            _TIMEOUT: "no reply within the timeout",
        }

        def failure(address: str) -> str:
            outcome = route.outcome.get(address)
            return f"answered {route.refused.get(address)!r}" if outcome is _REFUSED else what.get(outcome, "not tried")

        failures = "; ".join(f"{address}: {failure(address)}" for address in route.addresses)
        return BackendUnavailable(
            f"No model backend or broker answered at any of {len(route.addresses)} addresses ({failures}). "
            "Start one, or check the addresses (a backend that requires CURVE keys also refuses clients without them: --keys-dir)."
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

    def _checkout(self, address: str) -> "_Connection":
        with self._lock:
            if self._closed:
                raise BackendUnavailable("This BackendClient has been closed.")
            for index in range(len(self._idle) - 1, -1, -1):
                if self._idle[index].address == address:
                    return self._idle.pop(index)
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
            sock.connect(address)
        except zmq.ZMQError as exc:  # e.g. out of file descriptors: a typed error, never a raw ZMQError
            for half_made in (monitor, sock):
                if half_made is not None:
                    half_made.close(linger=0)
            raise BackendUnavailable(f"Could not open a connection to the model backend at {address}: {exc}.") from None
        return _Connection(sock, monitor, address)

    def _checkin(self, conn: "_Connection") -> None:
        with self._lock:
            if not self._closed and len(self._idle) < MAX_IDLE_SOCKETS:
                self._idle.append(conn)
                return
        conn.close()


#: what _await_reply returns when the connection dropped before the reply came
_LOST = object()
#: an attempt whose send found no connection within connect_timeout_ms
_UNREACHABLE = object()
#: an attempt with no reply within timeout_ms
_TIMEOUT = object()
#: an attempt answered with an error that another address may not have (see _FAIL_OVER_CODES)
_REFUSED = object()
#: error replies that send a call to the next address when there is one: that backend or broker is stopping,
#: lost the worker, or has no worker yet (a broker just restarted); the same request may well succeed elsewhere
_FAIL_OVER_CODES = frozenset({BackendUnavailable.code, NotReady.code})


def _error_code(reply: dict) -> str | None:
    error = reply.get("error")
    return str(error.get("code")) if not reply.get("ok") and isinstance(error, dict) else None


def _refusal(op: str, reply: dict) -> str | None:
    """Why ``reply`` sends the call on to the next address (None: it is the answer): an error of
    :data:`_FAIL_OVER_CODES`, or a ping/info answered ``"ready": false`` (a broker without workers, which
    answers those ops itself: another broker may have some)."""
    if _error_code(reply) in _FAIL_OVER_CODES:
        return str((reply.get("error") or {}).get("message", ""))[:200]
    if reply.get("ok") and protocol.OP_SPECS[op].answered_by_broker and reply.get("ready") is False:
        return "ready: false (no model worker there, or its model still loading)"
    return None


class _Route:
    """Which address a call tries next: start at the one that answered last, move on when one is unavailable.

    Each address gets ``attempts`` tries (timeouts and lost connections count; the Lazy Pirate budget of a
    single address, as before failover), and none after it was unreachable or refused the request. A timeout stays on its address
    (the backend is up, only slow); a lost connection or no connection moves to the next address with
    tries left, round the list.
    """

    def __init__(self, addresses: tuple[str, ...], preferred: str | None, attempts: int):
        start = addresses.index(preferred) if preferred in addresses else 0
        self.addresses = addresses[start:] + addresses[:start]
        self._left = {address: attempts for address in self.addresses}
        self._attempts = attempts
        self.outcome: dict[str, object] = {}
        self.refused: dict[str, str] = {}  # address -> the error message it answered
        self.last_reply: dict = {}  # the last error reply that sent the call on
        self.unready_reply: dict | None = None  # the first ping/info reply that said "ready": false
        self.last: object | None = None
        self.current = self.addresses[0]

    def spend(self, outcome: object) -> None:
        """Record how the attempt at ``current`` ended."""
        self.outcome[self.current] = self.last = outcome
        spent = outcome is _UNREACHABLE or outcome is _REFUSED  # a definite "not here", not worth a second try
        self._left[self.current] = 0 if spent else self._left[self.current] - 1

    def left(self, address: str) -> bool:
        return self._left[address] > 0

    def tries(self, address: str) -> int:
        return self._attempts - self._left[address]

    def next(self) -> str | None:
        """The next address with tries left (this one again when it is the only one), or None when all are spent."""
        index = self.addresses.index(self.current)
        for step in range(1, len(self.addresses) + 1):
            address = self.addresses[(index + step) % len(self.addresses)]
            if self._left[address] > 0:
                self.current = address
                return address
        return None


class _Connection:
    """A pooled DEALER socket and the monitor that tells when its connection drops (a backend killed mid-request)."""

    def __init__(self, sock: zmq.Socket, monitor: zmq.Socket, address: str):
        self.sock = sock
        self.monitor = monitor
        self.address = address
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
