"""The dashboard's door: a WSGI middleware that vets every request before Flask or Dash reads a byte of its body.

In this order, each answered without touching ``wsgi.input``:

1. Host: the Host header must name an allowed host (any port) -> else 400.
   Default: loopback names (localhost, 127.0.0.1, [::1]) plus the name ``--host``
   implies, and the machine's hostname/FQDN when it binds every interface
   (0.0.0.0 or ::). ``allowed_hosts=("*",)`` allows any. (DNS rebinding needs a
   foreign name to reach this server; a browser always sends it in Host.)
2. Credentials, when users are configured: HTTP basic auth -> else 401 with
   ``WWW-Authenticate`` (JSON for /api/, a plain page otherwise). The User (name,
   role) goes into ``environ["warmserve.user"]``; with auth off every request is
   the anonymous user with ``settings.role_without_auth``.
3. Origin, for state-changing methods (POST, PUT, PATCH, DELETE): when an
   Origin header is present it must be this server (same host and port as the
   Host header) -> else 403. No Origin (curl, scripts) is allowed.
4. Body size: Dash's callback routes (POST /_dash-*) have their own limit
   (``settings.callback_body_limit``: dropped images travel base64-encoded),
   everything else the request limit (one image plus multipart overhead). A
   declared Content-Length over the limit is a 413 before reading; a body
   without one (chunked) is read through a stream that stops at the limit.
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import json
import logging
import socket
from typing import Callable, Iterable, NamedTuple
from urllib.parse import urlsplit

from werkzeug.exceptions import RequestEntityTooLarge

from ..settings import DashboardSettings
from ..users import ANONYMOUS, ENVIRON_KEY, NOT_CHECKED, Authenticator, User

log = logging.getLogger(__name__)

REALM = "warmserve"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DASH_ROUTE_PREFIX = "/_dash-"
ANY_HOST = "*"
DEFAULT_PORTS = {"http": 80, "https": 443}
WILDCARD_BINDS = ("0.0.0.0", "::", "[::]", "")


def allowed_host_names(settings: DashboardSettings) -> frozenset[str]:
    """The Host names (lower case, no port, IPv6 without brackets) this dashboard answers to."""
    if settings.allowed_hosts:
        return frozenset(_bare(h) for h in settings.allowed_hosts)
    names = {"localhost", "127.0.0.1", "::1", _bare(settings.host.strip().lower())}
    if settings.host.strip() in WILDCARD_BINDS:
        names.discard(_bare(settings.host.strip()))
        for name in (socket.gethostname(), _fqdn()):
            if name:
                names.add(name.lower().rstrip("."))
    return frozenset(names)


def _fqdn() -> str:
    try:
        return socket.getfqdn()
    except OSError:  # pragma: no cover - resolver trouble
        return ""


def _bare(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


@functools.lru_cache(maxsize=256)  # every request names the same few hosts; checked twice each (I/O thread, then middleware)
def split_host(value: str) -> tuple[str, int | None] | None:
    """``"Example.com:8050"`` -> ("example.com", 8050); ``"[::1]"`` -> ("::1", None); None if malformed."""
    value = value.strip()
    if not value or any(c in value for c in " /\\@?#\t\r\n"):
        return None
    try:
        parsed = urlsplit("//" + value)
        port = parsed.port
        hostname = parsed.hostname
    except ValueError:
        return None
    if not hostname:
        return None
    return hostname.lower().rstrip("."), port


class Guard:
    """WSGI middleware around the Flask app: host, credentials, origin and body size, in that order."""

    def __init__(self, app: Callable, settings: DashboardSettings, *, request_limit: int) -> None:
        self.app = app
        self.settings = settings
        self.hosts = None if ANY_HOST in settings.allowed_hosts else allowed_host_names(settings)
        self.authenticator = Authenticator(settings.users) if settings.users else None
        self.anonymous = User(ANONYMOUS, "", settings.role_without_auth)
        self.request_limit = request_limit
        self.callback_limit = max(settings.callback_body_limit, request_limit)

    # -- the checks -------------------------------------------------------------------------------------------

    def check_host(self, environ) -> str | None:
        raw = environ.get("HTTP_HOST")
        if raw is None or self.hosts is None:
            return None  # HTTP/1.0 without Host: no browser sends that, so no rebinding through it
        parsed = split_host(raw)
        if parsed is None:
            return f"Expected a Host header such as localhost:8050. Received: {raw[:100]!r}"
        if parsed[0] not in self.hosts:
            return (f"Expected a Host header naming this dashboard ({', '.join(sorted(self.hosts))}; "
                    f"see --allowed-hosts). Received: {parsed[0][:100]!r}")
        return None

    def authenticate(self, environ, compute: bool = True):
        """The User, None (refuse), or NOT_CHECKED when compute=False and the password needs hashing."""
        if self.authenticator is None:
            return self.anonymous
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded.strip():
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        name, sep, password = decoded.partition(":")
        if not sep or not name or not password:
            return None
        return self.authenticator.verify(name, password, compute=compute)

    def check_origin(self, environ) -> str | None:
        if environ.get("REQUEST_METHOD", "GET").upper() not in UNSAFE_METHODS:
            return None
        origin = environ.get("HTTP_ORIGIN")
        if origin is None:
            return None
        if same_origin(origin, environ):
            return None
        return (f"Expected a request from this dashboard's own pages (Origin matching the Host "
                f"{environ.get('HTTP_HOST', '')[:100]!r}). Received: Origin {origin[:100]!r}")

    def body_limit(self, environ) -> int:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD", "GET").upper() == "POST" and path.startswith(DASH_ROUTE_PREFIX):
            return self.callback_limit
        return self.request_limit

    def too_large_message(self, limit: int, length: int) -> str:
        if limit == self.request_limit:
            size = f"{self.settings.max_image_bytes / (1024 * 1024):g} MB"
            return (f"The request is larger than the {size} limit per image. "
                    f"Expected at most {limit} bytes. Received: Content-Length {length}")
        return (f"The request is larger than the {limit / (1024 * 1024):.0f} MB limit of Dash's callback route "
                f"(callback_max_bytes). Received: Content-Length {length}")

    # -- the middleware ---------------------------------------------------------------------------------------

    def refusal(self, environ, cheap: bool = False) -> Refusal | None:
        """The first check ``environ`` fails, from its headers alone; on success the User goes into environ.

        ``cheap``: for the server's I/O thread, before the body arrives: a password that would need hashing
        (not remembered from an earlier request) is left for the full check on a request thread.
        """
        problem = self.check_host(environ)
        if problem:
            return Refusal(400, "bad_host", problem)
        user = self.authenticate(environ, compute=not cheap)
        if user is None:
            return Refusal(401, "unauthorized", "Log in with HTTP basic auth (a dashboard user and password).",
                           (("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"'),))
        if user is not NOT_CHECKED:
            environ[ENVIRON_KEY] = user
            environ["REMOTE_USER"] = user.name
        problem = self.check_origin(environ)
        if problem:
            return Refusal(403, "cross_origin", problem)
        raw_length = environ.get("CONTENT_LENGTH") or ""
        if raw_length.strip():
            limit = self.body_limit(environ)
            try:
                length = int(raw_length)
                if length < 0:
                    raise ValueError
            except ValueError:
                return Refusal(400, "bad_request",
                               f"Expected Content-Length to be a whole number of bytes. Received: {raw_length[:40]!r}")
            if length > limit:
                return Refusal(413, "too_large", self.too_large_message(limit, length))
        return None

    def __call__(self, environ, start_response) -> Iterable[bytes]:
        refusal = self.refusal(environ)
        if refusal is not None:
            return respond(environ, start_response, refusal.status, refusal.code, refusal.message,
                           list(refusal.headers))
        has_length = bool((environ.get("CONTENT_LENGTH") or "").strip())
        if not has_length and ("chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
                               or environ.get("wsgi.input_terminated")):
            # no declared length: read at most the limit, then refuse
            environ["wsgi.input"] = BoundedInput(environ["wsgi.input"], self.body_limit(environ))
            environ["wsgi.input_terminated"] = True  # the wrapper ends the stream at the limit
        return self.app(environ, start_response)


class Refusal(NamedTuple):
    """Why a request is refused: HTTP status, error code, message and extra headers."""

    status: int
    code: str
    message: str
    headers: tuple[tuple[str, str], ...] = ()


class BoundedInput(io.RawIOBase):
    """A body stream without a declared length that refuses (413) to yield more than ``limit`` bytes."""

    def __init__(self, stream, limit: int) -> None:
        self.stream = stream
        self.limit = limit
        self.seen = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.stream.read(min(len(buffer), self.limit + 1 - self.seen) or 1)
        self.seen += len(data)
        if self.seen > self.limit:
            raise RequestEntityTooLarge(f"Expected a request body of at most {self.limit} bytes.")
        buffer[:len(data)] = data
        return len(data)


def same_origin(origin: str, environ) -> bool:
    """True when Origin names the host and port the request was sent to (scheme-aware default ports)."""
    try:
        parsed = urlsplit(origin.strip())
        scheme = parsed.scheme.lower()
        origin_port = parsed.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        return False
    if scheme not in DEFAULT_PORTS or not parsed.hostname or parsed.path not in ("", "/") or parsed.query:
        return False
    host = split_host(environ.get("HTTP_HOST") or environ.get("SERVER_NAME", ""))
    if host is None:
        return False
    # Host without a port: the browser used its scheme's default port (what a TLS proxy in front also sees)
    host_port = host[1] or DEFAULT_PORTS.get(scheme)
    return parsed.hostname.lower().rstrip(".") == host[0] and origin_port == host_port


REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 413: "Payload Too Large"}


def refusal_response(path: str, status: int, code: str, message: str,
                     headers: list[tuple[str, str]] | None = None) -> tuple[str, list[tuple[str, str]], bytes]:
    """(status line, headers, body) of a refusal: JSON ``{"error": {"code", "message"}}`` for /api/ and Dash's
    JSON routes, a plain page otherwise."""
    if path.startswith("/api/") or path.startswith(DASH_ROUTE_PREFIX):
        body = json.dumps({"error": {"code": code, "message": message}}).encode("utf-8")
        content_type = "application/json"
    else:
        title = {401: "Login required"}.get(status, REASONS.get(status, "Refused"))
        body = f"{title}\n\n{message}\n".encode("utf-8")
        content_type = "text/plain; charset=utf-8"
    all_headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), *(headers or [])]
    return f"{status} {REASONS.get(status, 'Error')}", all_headers, body


def respond(environ, start_response, status: int, code: str, message: str,
            headers: list[tuple[str, str]] | None = None) -> list[bytes]:
    """Send a refusal (see refusal_response) from the middleware."""
    path = environ.get("PATH_INFO", "")
    if status in (401, 403):
        log.info("%s %s %s -> %d %s", environ.get("REMOTE_ADDR"), environ.get("REQUEST_METHOD"), path[:200], status, code)
    status_line, all_headers, body = refusal_response(path, status, code, message, headers)
    start_response(status_line, all_headers)
    return [body]
