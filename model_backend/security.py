"""CURVE authentication for every ZeroMQ endpoint, and the loopback rule.

A keys folder (``python -m model_backend keys init KEYS`` makes one; see keys_command.py) holds:

    KEYS/server.key            the backend's / broker's public key: every machine gets a copy
    KEYS/server.key_secret     its secret key: only on the machine that binds (backend or broker)
    KEYS/client.key, .key_secret   this machine's client pair (dashboard; CLI classify, ping, info)
    KEYS/worker.key, .key_secret   this machine's worker pair (``serve --connect``)
    KEYS/clients/NAME.key      public keys allowed to send requests (a backend, a broker's frontend)
    KEYS/workers/NAME.key      public keys allowed to register as workers (a broker's worker port)

A process reads only the files its sockets need (see :func:`required_files`). Clients and
workers are checked against separate allow-lists, one ZAP domain per bound socket, so a
client key can never register as a worker and a worker key cannot send requests. One
:class:`zmq.auth.thread.ThreadAuthenticator` per context answers the ZAP requests; it
re-reads the allow-list folder at every new connection, so adding or removing a key file
takes effect without a restart (connections already made stay until they drop).

The loopback rule (:func:`check_security`, used by every settings class): a ``tcp://``
endpoint that is not loopback (``127.0.0.0/8``, ``::1``, ``localhost``) is refused without
CURVE keys unless ``insecure`` is set (``--insecure``), which logs a warning. ``*``,
``0.0.0.0``, LAN addresses and host names are not loopback; ``ipc://`` and ``inproc://``
never leave the machine.

Wiring is one call right after a socket is created, before bind/connect:
``secure_server(sock, keys_dir, CLIENTS)``, ``secure_server(sock, keys_dir, WORKERS)`` or
``secure_client(sock, keys_dir, CLIENT | WORKER)``; with ``keys_dir=None`` they do nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.utils import z85

from .settings import SettingsError

log = logging.getLogger(__name__)

#: ZAP domains of bound sockets: who may connect to them
CLIENTS = "clients"
WORKERS = "workers"
#: identities of connecting sockets: which pair of this machine they present
CLIENT = "client"
WORKER = "worker"

SERVER_NAME = "server"
PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
KEYS_COMMAND = "python -m model_backend keys init KEYS"
_LOOPBACK_NAMES = ("localhost",)


# -- the loopback rule -------------------------------------------------------------


def is_loopback_endpoint(address: str) -> bool:
    """True for ipc:// and inproc://, and for tcp:// whose every host part is loopback.

    ``tcp://SOURCE;HOST:PORT`` (a connect with a source address) counts only when both are.
    """
    transport, _, rest = address.partition("://")
    if transport in ("ipc", "inproc"):
        return True
    if transport != "tcp":
        return False
    return all(_is_loopback_host(_host_of(part)) for part in rest.split(";"))


def _host_of(part: str) -> str:
    """The host of ``HOST:PORT``, ``[V6]:PORT``, a bare ``HOST`` or an unbracketed ``V6:PORT``."""
    part = part.strip()
    if part.startswith("["):
        return part[1:part.find("]")] if "]" in part else ""
    if part.count(":") <= 1:
        return part.partition(":")[0]
    return part.rpartition(":")[0]


def _is_loopback_host(host: str) -> bool:
    host = host.strip().lower().rstrip(".")
    if host in _LOOPBACK_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:  # "*", an interface or host name: may be reachable from elsewhere
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


_warned_insecure: set[str] = set()
_warn_lock = threading.Lock()


def _warn_insecure(name: str, address: str) -> None:
    """Once per endpoint and process: settings objects may be built more than once."""
    with _warn_lock:
        if address in _warned_insecure:
            return
        _warned_insecure.add(address)
    log.warning(
        "--insecure: %s %s is not loopback and has no CURVE keys; anyone who can reach it can send or read "
        "its traffic unauthenticated and unencrypted. Use --keys-dir (see `%s`) to secure it.",
        name, address, KEYS_COMMAND,
    )


# -- checking a keys folder at settings construction ---------------------------------------


def required_files(needs: Iterable[str]) -> list[str]:
    """Paths (relative to KEYS) that a process with these sockets needs.

    ``needs`` holds CLIENTS / WORKERS for bound sockets (their ZAP domains) and CLIENT /
    WORKER for connecting ones (their identities).
    """
    files: list[str] = []
    for need in needs:
        if need in (CLIENTS, WORKERS):
            wanted = [SERVER_NAME + SECRET_SUFFIX, need + "/"]
        elif need in (CLIENT, WORKER):
            wanted = [SERVER_NAME + PUBLIC_SUFFIX, need + SECRET_SUFFIX]
        else:
            raise ValueError(f"unknown CURVE need {need!r}")
        files.extend(name for name in wanted if name not in files)
    return files


def check_security(endpoints: Mapping[str, str | None], *, keys_dir: Path | str | None, insecure: bool,
                   needs: Iterable[str]) -> Path | None:
    """The one rule for every settings class. Returns ``keys_dir`` as a Path (None when not given).

    With keys: each file in :func:`required_files` must exist and hold a valid key (or, for an
    allow-list folder, at least one). Without keys: every endpoint must be loopback, unless
    ``insecure`` (then a warning is logged once per endpoint).
    """
    if not isinstance(insecure, bool):
        raise SettingsError(f"Expected insecure to be true or false. Received: insecure={insecure!r}")
    if keys_dir is not None and str(keys_dir).strip() == "":
        keys_dir = None
    if keys_dir is not None:
        keys_dir = Path(keys_dir).expanduser()
        _check_keys_dir(keys_dir, required_files(needs))
        return keys_dir
    for name, address in endpoints.items():
        if address is None or is_loopback_endpoint(address):
            continue
        if insecure:
            _warn_insecure(name, address)
            continue
        raise SettingsError(
            f"Expected a loopback address (127.0.0.1, localhost, ::1, ipc://) for {name} when no CURVE keys are given. "
            f"Received: {name}={address!r}. To use it beyond this machine, make keys with `{KEYS_COMMAND}` and pass "
            "--keys-dir KEYS (WARMSERVE_KEYS_DIR; see README, 'Securing ZeroMQ across machines'), or pass --insecure "
            "(WARMSERVE_INSECURE=1) to accept unauthenticated, unencrypted traffic."
        )
    return None


def _check_keys_dir(keys_dir: Path, files: list[str]) -> None:
    if not keys_dir.is_dir():
        raise SettingsError(f"Expected keys_dir to be a CURVE keys folder made by `{KEYS_COMMAND}`. "
                            f"Received: keys_dir='{keys_dir}' (no such folder)")
    for name in files:
        path = keys_dir / name
        if name.endswith("/"):
            if not path.is_dir() or not any(path.glob("*" + PUBLIC_SUFFIX)):
                who = "clients that may send requests" if name.startswith(CLIENTS) else "workers that may register"
                raise SettingsError(
                    f"Expected at least one public key in {path} ({who}; `python -m model_backend keys add {keys_dir} NAME "
                    f"--role {name.rstrip('s/')}` adds one). Received: keys_dir='{keys_dir}' without any"
                )
            continue
        if not path.is_file():
            raise SettingsError(f"Expected {path} ({_describe(name)}). Received: keys_dir='{keys_dir}' without it")
        load_key(path, secret=name.endswith(SECRET_SUFFIX))


def _describe(name: str) -> str:
    return {
        SERVER_NAME + SECRET_SUFFIX: "the backend's or broker's secret key: only on the machine that binds",
        SERVER_NAME + PUBLIC_SUFFIX: "the backend's or broker's public key: copy it from there",
        CLIENT + SECRET_SUFFIX: "this machine's client key pair: `keys add KEYS NAME --role client` makes one to copy here",
        WORKER + SECRET_SUFFIX: "this machine's worker key pair: `keys add KEYS NAME --role worker` makes one to copy here",
    }.get(name, "a CURVE key file")


@dataclass(frozen=True)
class KeyPair:
    public: bytes
    secret: bytes | None


def load_key(path: Path, *, secret: bool) -> KeyPair:
    """A key file's pair (``secret``: it must hold the secret key too); SettingsError if it is missing or damaged."""
    try:
        public, secret_key = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise SettingsError(f"Expected {path} to be a CURVE key file made by `{KEYS_COMMAND}`. Received: {exc}") from None
    for kind, key in (("public", public), ("secret", secret_key if secret else public)):
        if key is None or not _valid_z85_key(key):
            raise SettingsError(f"Expected {path} to hold a 40-character Z85 {kind} key. Received: "
                                f"{'none' if key is None else f'{len(key)} characters'}")
    if secret:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            log.warning("Secret key %s can be read by other users (mode %o); `chmod 600 %s`", path, mode, path)
    return KeyPair(public, secret_key if secret else None)


def _valid_z85_key(key: bytes) -> bool:
    if len(key) != 40:
        return False
    try:
        return len(z85.decode(key)) == 32
    except (ValueError, KeyError, TypeError):
        return False


# -- applying CURVE to sockets -----------------------------------------------------------


def secure_server(sock: zmq.Socket, keys_dir: Path | None, domain: str) -> None:
    """Make ``sock`` (before it binds) a CURVE server that admits only the keys in KEYS/<domain>/.

    No-op without keys. ``domain`` is CLIENTS (a backend, a broker's frontend) or WORKERS
    (a broker's worker port).
    """
    if keys_dir is None:
        return
    if domain not in (CLIENTS, WORKERS):
        raise ValueError(f"Expected domain {CLIENTS!r} or {WORKERS!r}. Received: {domain!r}")
    pair = _load_for_socket(Path(keys_dir) / (SERVER_NAME + SECRET_SUFFIX), secret=True)
    sock.curve_secretkey = pair.secret
    sock.curve_publickey = pair.public
    sock.curve_server = True
    sock.zap_domain = _authorize(sock.context, Path(keys_dir) / domain, domain).encode()


def secure_client(sock: zmq.Socket, keys_dir: Path | None, role: str = CLIENT) -> None:
    """Make ``sock`` (before it connects) a CURVE client presenting this machine's ``role`` pair. No-op without keys."""
    if keys_dir is None:
        return
    if role not in (CLIENT, WORKER):
        raise ValueError(f"Expected role {CLIENT!r} or {WORKER!r}. Received: {role!r}")
    server = _load_for_socket(Path(keys_dir) / (SERVER_NAME + PUBLIC_SUFFIX), secret=False)
    pair = _load_for_socket(Path(keys_dir) / (role + SECRET_SUFFIX), secret=True)
    sock.curve_secretkey = pair.secret
    sock.curve_publickey = pair.public
    sock.curve_serverkey = server.public


_loaded: dict[tuple[str, bool], tuple[int | None, KeyPair]] = {}


def _load_for_socket(path: Path, *, secret: bool) -> KeyPair:
    """A key file for a new socket: read again when it changed (a replaced key is used), else the copy read before.

    Settings construction checked the file; if it is removed or damaged later, a client making a
    fresh socket keeps using the keys it read before (logged) instead of failing with SettingsError.
    """
    entry = (str(path), secret)
    try:
        mtime: int | None = path.stat().st_mtime_ns
    except OSError:
        mtime = None
    cached = _loaded.get(entry)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    try:
        pair = load_key(path, secret=secret)
    except SettingsError as exc:
        if cached is None:
            raise
        log.error("%s; using the keys read from it before", exc)
        _loaded[entry] = (mtime, cached[1])  # log once per change, not per socket
        return cached[1]
    _loaded[entry] = (mtime, pair)
    return pair


class _AllowList:
    """A ZAP credentials provider: a key is allowed while its file is in the folder (read at each connection)."""

    def __init__(self, folder: Path, domain: str):
        self.folder = folder
        self.domain = domain
        self._refused: dict[bytes, float] = {}

    def callback(self, _domain: str, z85_key: bytes) -> bool:
        try:
            if z85_key in self._allowed_keys():
                return True
        except Exception:  # noqa: BLE001 - refuse, never end the ZAP thread (every later connection would hang)
            log.exception("Cannot read the CURVE allow-list %s; refusing the connection", self.folder)
            return False
        if self._first_in_a_minute(z85_key):  # a refused peer retries every second
            log.warning("Refused a connection to the %s port: CURVE key %s is not in %s",
                        self.domain, z85_key.decode("ascii", "replace"), self.folder)
        return False

    def _allowed_keys(self) -> set[bytes]:
        """The public keys of the folder's *.key files; a damaged file is skipped (and logged), not fatal for the others."""
        keys = set()
        for path in sorted(self.folder.glob("*" + PUBLIC_SUFFIX)):
            try:
                public, _ = zmq.auth.load_certificate(path)
            except (OSError, ValueError) as exc:
                if self._first_in_a_minute(str(path).encode()):
                    log.warning("Skipping %s in the %s allow-list: %s", path.name, self.domain, exc)
                continue
            keys.add(public)
        return keys

    def _first_in_a_minute(self, key: bytes) -> bool:
        now = time.monotonic()
        if now - self._refused.get(key, -3600.0) <= 60.0:
            return False
        if len(self._refused) > 1024:
            self._refused.clear()
        self._refused[key] = now
        return True


_authenticators: dict[int, tuple[zmq.Context, object]] = {}
_auth_lock = threading.Lock()


def _authorize(context: zmq.Context, folder: Path, domain: str) -> str:
    """Start (once per context) the ZAP thread and register ``folder`` as a domain; return the domain name."""
    from zmq.auth.thread import ThreadAuthenticator  # imports asyncio: only where a server uses CURVE

    folder = folder.resolve()
    # One domain per allow-list folder: two servers in one process with different keys stay apart.
    name = f"warmserve-{domain}-{hashlib.sha256(str(folder).encode()).hexdigest()[:16]}"
    with _auth_lock:
        entry = _authenticators.get(id(context))
        if entry is None or entry[0] is not context:
            authenticator = ThreadAuthenticator(context, log=logging.getLogger(__name__ + ".zap"))
            authenticator.start()
            entry = (context, authenticator)
            _authenticators[id(context)] = entry
        authenticator = entry[1]
        authenticator.configure_curve_callback(domain=name, credentials_provider=_AllowList(folder, domain))
    return name


def stop_authenticator(context: zmq.Context) -> None:
    """Stop the ZAP thread of ``context`` (before ``context.term()``); servers using it refuse everyone after."""
    with _auth_lock:
        entry = _authenticators.pop(id(context), None)
    if entry is not None and entry[0] is context:
        entry[1].stop()


# -- CLI flags ------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--keys-dir and --insecure (WARMSERVE_KEYS_DIR / WARMSERVE_INSECURE when not given)."""
    parser.add_argument("--keys-dir", type=Path,
                        help=f"CURVE keys folder (made by `{KEYS_COMMAND}`); needed for a tcp:// address that is not loopback")
    parser.add_argument("--insecure", action="store_true", default=None,
                        help="allow a non-loopback tcp:// address without CURVE keys (unauthenticated, unencrypted)")
