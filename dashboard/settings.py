"""DashboardSettings: every knob of the web tier, built once from CLI flags and environment.

A flag wins over the environment (``WARMSERVE_DASH_*``), which wins over the
default. Values are checked at construction, with messages that say what was
expected and what was received. The object is frozen and passed explicitly to
``create_app``, the API and the CLI; nothing reads ``os.environ`` elsewhere.

Environment variables:

    WARMSERVE_DASH_HOST, WARMSERVE_DASH_PORT, WARMSERVE_DASH_BACKEND,
    WARMSERVE_DASH_DATA_DIR, WARMSERVE_DASH_DB, WARMSERVE_DASH_THREADS,
    WARMSERVE_DASH_DEBUG, WARMSERVE_DASH_MAX_UPLOAD_MB, WARMSERVE_DASH_TIMEOUT_MS,
    WARMSERVE_DASH_USERS ("alice:pw,bob:pw2"), WARMSERVE_DASH_AUTH_FILE,
    WARMSERVE_DASH_SECRET_KEY
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from model_backend.settings import DEFAULT_ADDRESS, ClientSettings, SettingsError, parse_env_value

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = REPO_ROOT / "assets"
DEFAULT_DATA_DIR = REPO_ROOT / "data"
HISTORY_FILE_NAME = "history.sqlite3"
ENV_PREFIX = "WARMSERVE_DASH_"
MIB = 1024 * 1024

__all__ = ["DashboardSettings", "SettingsError", "settings_from", "parse_users", "read_auth_file"]


@dataclass(frozen=True)
class DashboardSettings:
    """How the dashboard serves, where it keeps its history and how it reaches the backend."""

    host: str = "127.0.0.1"
    port: int = 8050
    #: ZeroMQ address of the model backend (or of its broker)
    backend: str = DEFAULT_ADDRESS
    #: history database, uploads and the background-callback cache live here
    data_dir: Path = DEFAULT_DATA_DIR
    #: the SQLite history file; None means data_dir/history.sqlite3
    db_path: Path | None = None
    debug: bool = False
    #: waitress worker threads
    threads: int = 8
    #: largest image accepted, per file (web tier; the backend has its own limit too)
    max_image_bytes: int = 10 * MIB
    #: most files handled from one drop
    max_files: int = 16
    top_k: int = 5
    #: backend reply timeout for classify/info, and retries after a timeout
    timeout_ms: int = 5000
    retries: int = 1
    status_interval_ms: int = 3000
    #: how long the "run the monolith" subprocess may take
    monolith_timeout_s: float = 180.0
    #: (username, password) pairs; empty = no authentication
    users: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    secret_key: str | None = field(default=None, repr=False)
    assets_dir: Path = ASSETS_DIR

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host.strip():
            raise SettingsError(f"Expected host to be a hostname or IP address such as 127.0.0.1. Received: host={self.host!r}")
        _check_int("port", self.port, 0, 65535)  # 0: any free port
        _check_int("threads", self.threads, 1, 256)
        _check_int("max_image_bytes", self.max_image_bytes, 1024, 512 * MIB)
        _check_int("max_files", self.max_files, 1, 256)
        _check_int("top_k", self.top_k, 1, 100)
        _check_int("timeout_ms", self.timeout_ms, 1, 600_000)
        _check_int("retries", self.retries, 0, 20)
        _check_int("status_interval_ms", self.status_interval_ms, 250, 3_600_000)
        if not isinstance(self.monolith_timeout_s, (int, float)) or not 1 <= self.monolith_timeout_s <= 3600:
            raise SettingsError(f"Expected monolith_timeout_s between 1 and 3600. Received: monolith_timeout_s={self.monolith_timeout_s!r}")
        for name, password in self.users:
            if not name or ":" in name or not password:
                raise SettingsError(f"Expected users as 'name:password' pairs with a non-empty name and password. Received: user={name!r}")
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser())
        db_path = Path(self.db_path).expanduser() if self.db_path else self.data_dir / HISTORY_FILE_NAME
        object.__setattr__(self, "db_path", db_path)
        # Checked last: it builds the client settings, which validate the address.
        self.client_settings()

    @property
    def auth_enabled(self) -> bool:
        return bool(self.users)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

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
        return ClientSettings(address=self.backend, timeout_ms=self.timeout_ms, retries=self.retries)


def settings_from(flags: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None) -> DashboardSettings:
    """Build settings from parsed CLI flags (None = not given) over ``WARMSERVE_DASH_*`` variables."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    environ = os.environ if environ is None else environ
    values: dict = {}
    for suffix, (name, kind) in _ENV_FIELDS.items():
        raw = environ.get(ENV_PREFIX + suffix)
        if raw is not None and raw != "":
            values[name] = parse_env_value(ENV_PREFIX + suffix, raw, kind)
    if "max_upload_mb" in values:
        values["max_image_bytes"] = int(values.pop("max_upload_mb") * MIB)
    if flags.get("max_upload_mb") is not None:
        flags["max_image_bytes"] = int(float(flags.pop("max_upload_mb")) * MIB)
    auth_file = flags.pop("auth_file", None) or values.pop("auth_file", None)
    users_text = flags.pop("users", None) or values.pop("users", None)
    values.update(flags)
    users: list[tuple[str, str]] = []
    if users_text:
        users.extend(parse_users(str(users_text)))
    if auth_file:
        users.extend(read_auth_file(Path(str(auth_file))))
    if users:
        values["users"] = tuple(users)
    return DashboardSettings(**values)


def parse_users(text: str) -> list[tuple[str, str]]:
    """``"alice:pw,bob:pw2"`` -> [("alice", "pw"), ("bob", "pw2")]; a clear error for a malformed entry."""
    return _parse_entries(text.split(","))


def _parse_entries(entries: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        name, sep, password = entry.partition(":")
        if not sep or not name or not password:
            shown = repr(name.strip()) if sep else "an entry without ':'"  # never echo a password
            raise SettingsError("Expected users as 'name:password' separated by commas, e.g. alice:pw,bob:pw2. "
                                f"Received: {shown} with an empty name or password")
        pairs.append((name.strip(), password))
    return pairs


def read_auth_file(path: Path) -> list[tuple[str, str]]:
    """Read ``name:password`` lines (``#`` comments and blank lines ignored)."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"Expected a readable auth file with name:password lines. Received: auth_file={str(path)!r} ({exc.strerror})") from None
    lines = [line.strip() for line in text.splitlines()]
    return _parse_entries([line for line in lines if line and not line.startswith("#")])  # commas allowed here


#: environment variable suffix -> (settings key, type)
_ENV_FIELDS = {
    "HOST": ("host", str),
    "PORT": ("port", int),
    "BACKEND": ("backend", str),
    "DATA_DIR": ("data_dir", Path),
    "DB": ("db_path", Path),
    "THREADS": ("threads", int),
    "DEBUG": ("debug", bool),
    "MAX_UPLOAD_MB": ("max_upload_mb", float),
    "MAX_FILES": ("max_files", int),
    "TIMEOUT_MS": ("timeout_ms", int),
    "RETRIES": ("retries", int),
    "STATUS_INTERVAL_MS": ("status_interval_ms", int),
    "MONOLITH_TIMEOUT_S": ("monolith_timeout_s", float),
    "USERS": ("users", str),
    "AUTH_FILE": ("auth_file", str),
    "SECRET_KEY": ("secret_key", str),
}


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SettingsError(f"Expected {name} to be an integer from {low} to {high}. Received: {name}={value!r}")
