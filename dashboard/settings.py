"""DashboardSettings: every knob of the web tier, built once from CLI flags and environment.

A flag wins over the environment (``WARMSERVE_DASH_*``), which wins over the
default: model_backend.settings' one mechanism (``settings_values``), driven by
the fields' types, so every field has a ``WARMSERVE_DASH_<FIELD>`` variable
unless its ``setting(env=...)`` names another. Values are checked at
construction (``check_range``), with messages that say what was expected and
what was received. The object is frozen and passed explicitly to
``create_app``, the API and the CLI; nothing reads ``os.environ`` elsewhere.

Environment variables (every field has one; these are the names that differ or matter most):

    WARMSERVE_DASH_HOST, WARMSERVE_DASH_PORT, WARMSERVE_DASH_BACKEND,
    WARMSERVE_DASH_DATA_DIR, WARMSERVE_DASH_DB, WARMSERVE_DASH_THREADS,
    WARMSERVE_DASH_DEBUG, WARMSERVE_DASH_MAX_UPLOAD_MB, WARMSERVE_DASH_TIMEOUT_MS,
    WARMSERVE_DASH_USERS ("alice:pw,bob:pw2"), WARMSERVE_DASH_AUTH_FILE,
    WARMSERVE_DASH_SECRET_KEY, WARMSERVE_DASH_ANONYMOUS_ROLE (admin|viewer),
    WARMSERVE_DASH_ALLOWED_HOSTS ("dash.example,10.0.0.5" or "*"),
    WARMSERVE_DASH_CALLBACK_MAX_MB, WARMSERVE_DASH_CONNECTION_LIMIT,
    WARMSERVE_DASH_CHANNEL_TIMEOUT_S, WARMSERVE_DASH_CLEANUP_INTERVAL_S,
    WARMSERVE_DASH_KEYS_DIR, WARMSERVE_DASH_INSECURE (CURVE to the backend; see model_backend/security.py)
    WARMSERVE_DASH_MONOLITH_MODEL (else WARMSERVE_MODEL), WARMSERVE_DASH_MONOLITH_CONCURRENCY,
    WARMSERVE_DASH_MONOLITH_QUEUE, WARMSERVE_DASH_HISTORY_MAX_ROWS, WARMSERVE_DASH_HISTORY_MAX_AGE_DAYS,
    WARMSERVE_DASH_HISTORY_QUEUE, WARMSERVE_DASH_UNSURE_BELOW (top-1 probability under which a result is "unsure"),
    WARMSERVE_DASH_SESSION_RESULTS (results a browser tab keeps through reloads, default 50),
    WARMSERVE_DASH_REDIS (redis://host:6379/0: background jobs on Celery and the monolith cap across replicas),
    WARMSERVE_DASH_JOBS_METRICS_PORT, WARMSERVE_DASH_JOBS_METRICS_HOST, WARMSERVE_DASH_JOBS_STOP_GRACE_S (jobs-worker)

Users (see dashboard/users.py): entries are ``name:password`` (a plain password;
such a user is a viewer) or ``name:role:hash`` with a werkzeug password hash
(``python -m dashboard users add FILE NAME --role admin`` writes one).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Mapping

from model_backend.settings import (DEFAULT_ADDRESS, DEFAULT_MODEL, MIB, ClientSettings, SettingsError, check_range,
                                    megabytes, setting, settings_values)

from .users import ADMIN, ROLES, VIEWER, User, UsersError, normalize, parse_entry

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = REPO_ROOT / "assets"
DEFAULT_DATA_DIR = REPO_ROOT / "data"
HISTORY_FILE_NAME = "history.sqlite3"
ENV_PREFIX = "WARMSERVE_DASH_"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
#: room for the JSON around the base64 images on Dash's callback route
CALLBACK_SLACK_BYTES = MIB

__all__ = ["DashboardSettings", "SettingsError", "settings_from", "parse_users", "read_auth_file"]


@dataclass(frozen=True)
class DashboardSettings:
    """How the dashboard serves, where it keeps its history and how it reaches the backend.

    Built by :func:`settings_from` with model_backend.settings' mechanism: each
    field's flag, else ``WARMSERVE_DASH_<NAME>`` (or the variable its
    ``setting(env=...)`` names), else the default.
    """

    env_prefix: ClassVar[str] = ENV_PREFIX

    host: str = "127.0.0.1"
    port: int = 8050
    #: ZeroMQ address of the model backend (or of its broker)
    backend: str = DEFAULT_ADDRESS
    #: history database, uploads and the background-callback cache live here
    data_dir: Path = DEFAULT_DATA_DIR
    #: the history database: a SQLite file path, or a URL (sqlite:///PATH, postgresql://USER:PW@HOST:5432/DB);
    #: None means data_dir/history.sqlite3. A URL stays a str, a path becomes a Path.
    db_path: Path | str | None = setting(None, env=ENV_PREFIX + "DB", from_env=str, repr=False)  # a URL may carry a password
    debug: bool = False
    #: waitress worker threads
    threads: int = 8
    #: largest image accepted, per file (web tier; the backend has its own limit too)
    max_image_bytes: int = setting(10 * MIB, env=ENV_PREFIX + "MAX_UPLOAD_MB", from_env=megabytes,
                                   flag="max_upload_mb", from_flag=megabytes)
    #: most files handled from one drop
    max_files: int = 16
    top_k: int = 5
    #: a result whose top-1 probability is below this is marked "unsure" (muted bars, a badge); 0 = never
    unsure_below: float = 0.30
    #: results a browser tab keeps through reloads (the newest; small records in its sessionStorage, no images)
    session_results: int = 50
    #: backend reply timeout for classify/info, and retries after a timeout
    timeout_ms: int = 5000
    retries: int = 1
    status_interval_ms: int = 3000
    #: how long the "run the monolith" subprocess may take
    monolith_timeout_s: float = 180.0
    #: the monolith's --model, from the server's settings only (default: WARMSERVE_MODEL, else the backend's default)
    monolith_model: str = setting(DEFAULT_MODEL, env=(ENV_PREFIX + "MONOLITH_MODEL", "WARMSERVE_MODEL"))
    #: monolith runs at once across every dashboard process sharing data_dir, and how many more may wait in line
    monolith_concurrency: int = 1
    monolith_queue: int = 4
    #: Redis for background jobs (Celery, run by `python -m dashboard jobs-worker`) and the monolith cap shared by
    #: every replica, e.g. redis://redis:6379/0; None = one host: diskcache jobs and file locks under data_dir
    redis: str | None = setting(None, repr=False)  # a URL may carry a password
    #: `jobs-worker` only: serve its Prometheus metrics (the monolith runs it did) at http://HOST:PORT/metrics
    #: (0 = a free port; None = off), and how long SIGTERM lets running monolith runs go on before they are stopped
    jobs_metrics_port: int | None = None
    jobs_metrics_host: str = "127.0.0.1"
    jobs_stop_grace_s: float = 20.0
    #: history retention: the newest rows kept, and the oldest age kept (0 = no age limit)
    history_max_rows: int = 100_000
    history_max_age_days: float = 365.0
    #: history rows waiting for the background writer, at most (a full queue writes on the request thread; 0 = always)
    history_queue: int = 10_000
    #: users.User entries (name, password or werkzeug hash, role); (name, password) pairs are viewers.
    #: Empty = no authentication.
    users: tuple[User, ...] = setting((), env=None, flag=None, repr=False)  # USERS and AUTH_FILE: see settings_from
    secret_key: str | None = setting(None, repr=False)
    assets_dir: Path = ASSETS_DIR
    #: CURVE keys folder (server.key + this machine's client pair) for a backend beyond loopback
    keys_dir: Path | None = None
    #: reach a non-loopback backend without CURVE keys (unauthenticated, unencrypted)
    insecure: bool = False
    #: role of every request when auth is off: None = admin on a loopback host, viewer when exposed
    anonymous_role: str | None = None
    #: Host header names served (any port); empty = loopback names plus what ``host`` implies; "*" = any
    allowed_hosts: tuple[str, ...] = ()
    #: body limit of Dash's callback routes (dropped files travel base64-encoded); None = derived from
    #: max_files x max_image_bytes x 4/3 + 1 MiB
    callback_max_bytes: int | None = setting(None, env=ENV_PREFIX + "CALLBACK_MAX_MB", from_env=megabytes,
                                             flag="callback_max_mb", from_flag=megabytes)
    #: waitress: most open connections; idle ones are closed after channel_timeout_s, checked every
    #: cleanup_interval_s (slowloris: idle sockets must not starve the service)
    connection_limit: int = 1000
    channel_timeout_s: int = 30
    cleanup_interval_s: int = 5

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host.strip():
            raise SettingsError(f"Expected host to be a hostname or IP address such as 127.0.0.1. Received: host={self.host!r}")
        check_range("port", self.port, 0, 65535, integer=True)  # 0: any free port
        check_range("threads", self.threads, 1, 256, integer=True)
        check_range("max_image_bytes", self.max_image_bytes, 1024, 512 * MIB, integer=True)
        check_range("max_files", self.max_files, 1, 256, integer=True)
        check_range("top_k", self.top_k, 1, 100, integer=True)
        check_range("unsure_below", self.unsure_below, 0, 1)
        check_range("session_results", self.session_results, 1, 1000, integer=True)
        check_range("timeout_ms", self.timeout_ms, 1, 600_000, integer=True)
        check_range("retries", self.retries, 0, 20, integer=True)
        check_range("status_interval_ms", self.status_interval_ms, 250, 3_600_000, integer=True)
        check_range("monolith_timeout_s", self.monolith_timeout_s, 1, 3600)
        _check_monolith_model(self.monolith_model)
        check_range("monolith_concurrency", self.monolith_concurrency, 1, 64, integer=True)
        check_range("monolith_queue", self.monolith_queue, 0, 1000, integer=True)
        object.__setattr__(self, "redis", self.redis or None)  # an empty WARMSERVE_DASH_REDIS means none
        _check_redis_url(self.redis)
        if self.jobs_metrics_port is not None:
            check_range("jobs_metrics_port", self.jobs_metrics_port, 0, 65_535, integer=True)
        check_range("jobs_stop_grace_s", self.jobs_stop_grace_s, 0, 3600)
        check_range("history_max_rows", self.history_max_rows, 1, 1_000_000_000, integer=True)
        check_range("history_max_age_days", self.history_max_age_days, 0, 36_500)  # 0: no age limit
        check_range("history_queue", self.history_queue, 0, 10_000_000, integer=True)
        try:
            users = tuple(normalize(user) for user in self.users)
        except UsersError as error:
            raise SettingsError(str(error)) from None
        object.__setattr__(self, "users", users)
        if self.anonymous_role is not None and self.anonymous_role not in ROLES:
            raise SettingsError(f"Expected anonymous_role to be admin or viewer. Received: anonymous_role={self.anonymous_role!r}")
        hosts = (self.allowed_hosts,) if isinstance(self.allowed_hosts, str) else self.allowed_hosts
        hosts = tuple(str(h).strip().lower() for h in hosts if str(h).strip())
        object.__setattr__(self, "allowed_hosts", hosts)
        if self.callback_max_bytes is not None:
            check_range("callback_max_bytes", self.callback_max_bytes, 64 * 1024, 4096 * MIB, integer=True)
        check_range("connection_limit", self.connection_limit, 8, 100_000, integer=True)
        check_range("channel_timeout_s", self.channel_timeout_s, 1, 3600, integer=True)
        check_range("cleanup_interval_s", self.cleanup_interval_s, 1, 3600, integer=True)
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser())
        db_path = self.data_dir / HISTORY_FILE_NAME if not self.db_path else (
            str(self.db_path) if "://" in str(self.db_path) else Path(self.db_path).expanduser())
        object.__setattr__(self, "db_path", db_path)
        # Checked last: it builds the client settings, which validate the address.
        self.client_settings()

    @property
    def auth_enabled(self) -> bool:
        return bool(self.users)

    @property
    def loopback(self) -> bool:
        """Bound to a loopback address only (nothing else on the network can reach it directly)."""
        return self.host.strip().lower() in LOOPBACK_HOSTS or self.host.startswith("127.")

    @property
    def role_without_auth(self) -> str:
        """The role every request gets when auth is off: admin on loopback, viewer when exposed (or the setting)."""
        return self.anonymous_role or (ADMIN if self.loopback else VIEWER)

    @property
    def callback_body_limit(self) -> int:
        """Largest body accepted on Dash's callback routes (/_dash-*)."""
        if self.callback_max_bytes is not None:
            return self.callback_max_bytes
        return (self.max_files * self.max_image_bytes * 4) // 3 + CALLBACK_SLACK_BYTES

    @property
    def cache_dir(self) -> Path:
        """Where the background-callback manager (diskcache) keeps its jobs."""
        return self.data_dir / "callback-cache"

    @property
    def uploads_dir(self) -> Path:
        """Recent uploads by sha256, so the monolith can be run on them later (any worker process)."""
        return self.data_dir / "uploads"

    def client_settings(self) -> ClientSettings:
        """The BackendClient settings these dashboard settings imply."""
        return ClientSettings(address=self.backend, timeout_ms=self.timeout_ms, retries=self.retries,
                              keys_dir=self.keys_dir, insecure=self.insecure)


def settings_from(flags: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None) -> DashboardSettings:
    """Build settings from parsed CLI flags (None = not given) over ``WARMSERVE_DASH_*`` variables, over defaults.

    Every field goes through model_backend.settings' one mechanism; only the
    users are assembled here: ``users`` ("alice:pw,bob:pw2") and ``auth_file``,
    each a flag else its variable, both added together.
    """
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    environ = os.environ if environ is None else environ
    values = settings_values(DashboardSettings, flags, environ)
    users: list[User] = []
    users_text = flags.get("users") or environ.get(ENV_PREFIX + "USERS")
    if users_text:
        users.extend(parse_users(str(users_text)))
    auth_file = flags.get("auth_file") or environ.get(ENV_PREFIX + "AUTH_FILE")
    if auth_file:
        users.extend(read_auth_file(Path(str(auth_file))))
    if users:
        values["users"] = tuple(users)
    return DashboardSettings(**values)


def parse_users(text: str) -> list[User]:
    """``"alice:pw,bob:pw2"`` -> [User("alice", "pw", "viewer"), ...]; a clear error for a malformed entry."""
    return _parse_entries(text.split(","))


def _parse_entries(entries: list[str]) -> list[User]:
    users = []
    for entry in entries:
        if not entry.strip():
            continue
        try:
            users.append(parse_entry(entry))  # the message never echoes a password
        except UsersError as error:
            raise SettingsError(str(error)) from None
    return users


def read_auth_file(path: Path) -> list[User]:
    """Read ``name:password`` / ``name:role:hash`` lines (``#`` comments and blank lines ignored)."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"Expected a readable auth file with name:password lines. Received: auth_file={str(path)!r} ({exc.strerror})") from None
    lines = [line.strip() for line in text.splitlines()]
    return _parse_entries([line for line in lines if line and not line.startswith("#")])  # commas allowed here


def _check_redis_url(url: object) -> None:
    """None, or a redis-py URL (redis://, rediss:// or unix://) on one line."""
    if url is None:
        return
    if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")) or len(url) > 2048 \
            or any(ord(c) <= 32 or ord(c) == 127 for c in url):
        shown = url.split("@")[-1][:100] if isinstance(url, str) else url  # never echo a password
        raise SettingsError("Expected redis to be a Redis URL such as redis://redis:6379/0. "
                            f"Received: redis={shown!r}")


def _check_monolith_model(model: object) -> None:
    """A model name or .keras path as an admin writes it: one line, not an option, not absurdly long."""
    if not isinstance(model, str) or not model.strip() or model.startswith("-") or len(model) > 1024 \
            or any(ord(c) < 32 or ord(c) == 127 for c in model):
        raise SettingsError("Expected monolith_model to be a model name such as efficientnet-lite0 or a path to a .keras file. "
                            f"Received: monolith_model={str(model)[:100]!r}")
