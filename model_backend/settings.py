"""Frozen settings objects, built once (from CLI flags and environment) and passed explicitly.

Environment variables (all optional) use the ``WARMSERVE_`` prefix; a CLI flag
wins over the environment, which wins over the default. Every value is
checked at construction with a message that says how to fix it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

DEFAULT_ADDRESS = "tcp://127.0.0.1:5576"
DEFAULT_BROKER_BACKEND = "tcp://127.0.0.1:5577"
DEFAULT_MODEL = "efficientnet-lite0"
ENV_PREFIX = "WARMSERVE_"


class SettingsError(ValueError):
    """A setting has a value that cannot work; the message says which and how to fix it."""


def default_cache_dir() -> Path:
    """Where converted weights are cached: $WARMSERVE_CACHE_DIR, else $XDG_CACHE_HOME/warmserve."""
    explicit = os.environ.get(ENV_PREFIX + "CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "warmserve"


@dataclass(frozen=True)
class ModelSettings:
    """Which model to serve and where its files are."""

    name: str = DEFAULT_MODEL
    #: a local weights file (resnet50), or "random" for timing-only random weights
    weights: str | None = None
    #: labels file for a user's own .keras model (one class name a line)
    labels: Path | None = None
    #: preprocessing for a user's own model: raw | unit | tf | caffe | torch
    preprocess: str = "raw"
    cache_dir: Path = field(default_factory=default_cache_dir)

    def __post_init__(self) -> None:
        if not self.name:
            raise SettingsError("Expected a model name or a path to a .keras file. Received: model=''")
        if self.preprocess not in ("raw", "unit", "tf", "caffe", "torch"):
            raise SettingsError(
                f"Expected preprocess to be one of raw, unit, tf, caffe, torch. Received: preprocess={self.preprocess!r}"
            )


@dataclass(frozen=True)
class ServerSettings:
    """How the backend listens, batches and guards itself."""

    model: ModelSettings = field(default_factory=ModelSettings)
    #: ROUTER address to bind (a standalone server)
    bind: str = DEFAULT_ADDRESS
    #: broker address to connect to as a worker instead of binding (scale-out)
    connect: str | None = None
    max_batch: int = 16
    max_wait_ms: float = 2.0
    queue_size: int = 256
    max_image_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 64_000_000
    max_header_bytes: int = 4096
    decode_threads: int = 2
    #: TensorFlow intra-op threads; 0 lets TensorFlow choose (all cores)
    intra_op_threads: int = 0
    inter_op_threads: int = 1
    #: warm every batch size 1..max_batch (True) or only 1 and max_batch
    warmup_all_batch_sizes: bool = True
    heartbeat_ms: int = 1000
    log_level: str = "INFO"
    #: CURVE keys folder (see model_backend/security.py); needed to bind/connect beyond loopback
    keys_dir: Path | None = None
    #: allow a non-loopback tcp:// address without keys (unauthenticated; logs a warning)
    insecure: bool = False

    def __post_init__(self) -> None:
        _check_address("bind", self.bind)
        if self.connect is not None:
            _check_address("connect", self.connect)
        _check_range("max_batch", self.max_batch, 1, 1024)
        _check_range("max_wait_ms", self.max_wait_ms, 0, 10_000)
        _check_range("queue_size", self.queue_size, 1, 1_000_000)
        _check_range("max_image_bytes", self.max_image_bytes, 1, 1 << 31)
        _check_range("max_pixels", self.max_pixels, 1, 1 << 31)
        _check_range("max_header_bytes", self.max_header_bytes, 64, 1 << 20)
        _check_range("decode_threads", self.decode_threads, 1, 256)
        _check_range("intra_op_threads", self.intra_op_threads, 0, 1024)
        _check_range("inter_op_threads", self.inter_op_threads, 0, 1024)
        _check_range("heartbeat_ms", self.heartbeat_ms, 50, 60_000)
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError(f"Expected log_level DEBUG, INFO, WARNING or ERROR. Received: log_level={self.log_level!r}")
        # a worker connects with its worker pair; a standalone backend binds and admits client keys
        endpoint, needs = ({"connect": self.connect}, ("worker",)) if self.connect is not None else ({"bind": self.bind}, ("clients",))
        _check_security(self, endpoint, needs)


@dataclass(frozen=True)
class ClientSettings:
    """How a client reaches the backend and how long it waits."""

    address: str = DEFAULT_ADDRESS
    #: per-attempt reply timeout for classify/info
    timeout_ms: int = 5000
    #: extra attempts after a timeout (Lazy Pirate); 0 = one attempt only
    retries: int = 1
    #: how long to wait for a connection before saying the backend is unavailable
    connect_timeout_ms: int = 1000
    #: ping's own (short) timeout
    ping_timeout_ms: int = 1000
    #: CURVE keys folder with server.key and this machine's client pair
    keys_dir: Path | None = None
    #: allow a non-loopback tcp:// address without keys
    insecure: bool = False

    def __post_init__(self) -> None:
        _check_address("address", self.address)
        _check_range("timeout_ms", self.timeout_ms, 1, 600_000)
        _check_range("retries", self.retries, 0, 20)
        _check_range("connect_timeout_ms", self.connect_timeout_ms, 1, 600_000)
        _check_range("ping_timeout_ms", self.ping_timeout_ms, 1, 600_000)
        _check_security(self, {"address": self.address}, ("client",))


@dataclass(frozen=True)
class BrokerSettings:
    """Where the broker listens for clients and workers, and how it watches workers."""

    frontend: str = DEFAULT_ADDRESS
    backend: str = DEFAULT_BROKER_BACKEND
    queue_size: int = 1024
    heartbeat_ms: int = 1000
    liveness: int = 3
    retries: int = 1
    #: CURVE keys folder: the server pair, clients/ (frontend) and workers/ (worker port) allow-lists
    keys_dir: Path | None = None
    #: allow non-loopback tcp:// addresses without keys
    insecure: bool = False
    #: largest frame a client may send (ZMQ_MAXMSGSIZE on the frontend): as a backend's, a 20 MiB image plus a quarter
    max_frame_bytes: int = 25 * 1024 * 1024

    def __post_init__(self) -> None:
        _check_address("frontend", self.frontend)
        _check_address("backend", self.backend)
        _check_range("queue_size", self.queue_size, 1, 1_000_000)
        _check_range("heartbeat_ms", self.heartbeat_ms, 50, 60_000)
        _check_range("liveness", self.liveness, 2, 100)
        _check_range("retries", self.retries, 0, 10)
        _check_range("max_frame_bytes", self.max_frame_bytes, 4096, 1 << 31)
        _check_security(self, {"frontend": self.frontend, "backend": self.backend}, ("clients", "workers"))


_FIELD_TYPES = {"bool": bool, "int": int, "float": float}


def env_overrides(cls: type, prefix: str = ENV_PREFIX) -> dict:
    """Values for ``cls``'s scalar fields found in the environment (``WARMSERVE_MAX_BATCH=32``)."""
    values: dict = {}
    for f in fields(cls):
        raw = os.environ.get(prefix + f.name.upper())
        if raw is None or f.name == "model":
            continue
        kind = _FIELD_TYPES.get(str(f.type).split(" ")[0], str)  # annotations are strings here
        values[f.name] = parse_env_value(prefix + f.name.upper(), raw, kind)
    return values


def parse_env_value(env_name: str, raw: str, kind: type) -> object:
    """An environment variable's text as ``kind`` (bool, int, float, Path or str); SettingsError if it is not."""
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError(raw)
            return lowered in ("1", "true", "yes", "on")
        if kind in (int, float, Path):
            return kind(raw)
        return raw
    except ValueError:
        raise SettingsError(f"Expected {env_name} to be a {kind.__name__}. Received: {raw!r}") from None


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise SettingsError(f"Expected {name} between {low} and {high}. Received: {name}={value!r}")


def _check_security(settings: object, endpoints: dict, needs: tuple[str, ...]) -> None:
    """The loopback rule and the keys check (security.check_security), shared by every settings class."""
    from .security import check_security  # security imports this module

    keys_dir = check_security(endpoints, keys_dir=settings.keys_dir, insecure=settings.insecure, needs=needs)
    object.__setattr__(settings, "keys_dir", keys_dir)


def _check_address(name: str, address: str) -> None:
    if not isinstance(address, str) or "://" not in address:
        raise SettingsError(
            f"Expected {name} to be a ZeroMQ endpoint such as {DEFAULT_ADDRESS} or ipc:///tmp/warmserve. Received: {name}={address!r}"
        )
    transport = address.split("://", 1)[0]
    if transport not in ("tcp", "ipc", "inproc"):
        raise SettingsError(f"Expected {name} to use tcp://, ipc:// or inproc://. Received: {name}={address!r}")
