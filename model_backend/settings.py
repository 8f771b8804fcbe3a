"""Frozen settings objects, built once (from CLI flags and environment) and passed explicitly.

One mechanism builds every settings dataclass (here and the dashboard's):
:func:`build_settings` takes a flag if one was given, else an environment
variable, else the field's default. Each field's real type (read with
:func:`typing.get_type_hints`) says how its variable's text is parsed; a field
made with :func:`setting` may name its variables and flag itself or say how
to convert them. Variables are ``<env_prefix><FIELD NAME>`` by default
(``WARMSERVE_MAX_BATCH=32``); an empty variable counts as unset. Every value
is checked at construction (:func:`check_range`) with a message that says how
to fix it. The model flags every command shares (``--model``, ``--weights``...)
are here too (:func:`add_model_arguments`), next to :class:`ModelSettings`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import ClassVar, TypeVar

DEFAULT_ADDRESS = "tcp://127.0.0.1:5576"
DEFAULT_BROKER_BACKEND = "tcp://127.0.0.1:5577"
DEFAULT_MODEL = "efficientnet-lite0"
ENV_PREFIX = "WARMSERVE_"
PREPROCESS_MODES = ("raw", "unit", "tf", "caffe", "torch")
#: auto = LiteRT on CPU when the converted model verifies, else TensorFlow (see model_backend/models/runtimes.py)
RUNTIMES = ("auto", "litert", "tensorflow")
#: how LiteRT forward passes run (see model_backend/execution.py)
EXECUTIONS = ("auto", "wide", "pool", "adaptive")
MIB = 1024 * 1024

S = TypeVar("S")


class SettingsError(ValueError):
    """A setting has a value that cannot work; the message says which and how to fix it."""


def default_cache_dir() -> Path:
    """Where converted weights are cached: $WARMSERVE_CACHE_DIR, else $XDG_CACHE_HOME/warmserve."""
    explicit = os.environ.get(ENV_PREFIX + "CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "warmserve"


# -- one mechanism: flags -> environment -> defaults -----------------------------------

_AUTO = object()


def setting(default: object = dataclasses.MISSING, *, default_factory: object = dataclasses.MISSING,
            env: str | tuple[str, ...] | None | object = _AUTO, flag: str | None | object = _AUTO,
            from_env: Callable[[str], object] | None = None, from_flag: Callable[[object], object] | None = None,
            repr: bool = True) -> typing.Any:
    """A dataclass field that says where :func:`build_settings` finds its value.

    ``env``: the variable name(s), first set one wins (default ``<env_prefix><NAME>``; None or () = none).
    ``flag``: the argparse dest / flags key (default the field name; None = no flag).
    ``from_env`` / ``from_flag``: convert the text / flag value (default: parse by the field's type).
    """
    metadata = {"env": env, "flag": flag, "from_env": from_env, "from_flag": from_flag}
    return field(default=default, default_factory=default_factory, repr=repr, metadata=metadata)  # type: ignore[call-overload]


def megabytes(value: object) -> int:
    """MiB (text or number, fractions allowed) -> bytes."""
    return int(float(value) * MIB)  # type: ignore[arg-type]


def comma_list(value: object) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ("a", "b", "c"); a sequence is kept as a tuple of its strings."""
    items = str(value).split(",") if isinstance(value, str) else [str(item) for item in value]  # type: ignore[union-attr]
    return tuple(item.strip() for item in items if item.strip())


def env_names(cls: type, f: dataclasses.Field) -> tuple[str, ...]:
    """The environment variables of one field, first one wins."""
    names = f.metadata.get("env", _AUTO)
    if names is _AUTO:
        return (getattr(cls, "env_prefix", ENV_PREFIX) + f.name.upper(),)
    if names is None:
        return ()
    return (names,) if isinstance(names, str) else tuple(names)


def settings_values(cls: type, flags: Mapping[str, object] | argparse.Namespace | None = None,
                    environ: Mapping[str, str] | None = None) -> dict:
    """What :func:`build_settings` passes to ``cls``: per field, a given flag, else its set variable (else nothing)."""
    flags = vars(flags) if isinstance(flags, argparse.Namespace) else dict(flags or {})
    environ = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    values: dict = {}
    for f in fields(cls):
        kind = _scalar_type(hints[f.name])
        flag = f.metadata.get("flag", _AUTO)
        flag = f.name if flag is _AUTO else flag
        if flag is not None and flags.get(flag) is not None:
            values[f.name] = _from_flag(f, flag, flags[flag], kind)
            continue
        if flag is not None and flags.get(f.name) is not None:  # keyed by the field itself: already in its unit
            values[f.name] = flags[f.name]
            continue
        if kind is None and f.metadata.get("from_env") is None:
            continue  # a type no text can spell (a nested settings object): the caller gives it
        for env_name in env_names(cls, f):
            raw = environ.get(env_name)
            if raw is not None and raw != "":
                values[f.name] = _from_env(f, env_name, raw, kind)
                break
    return values


def build_settings(cls: type[S], flags: Mapping[str, object] | argparse.Namespace | None = None,
                   environ: Mapping[str, str] | None = None, **given: object) -> S:
    """A frozen ``cls`` from flags (None = not given), then the environment, then defaults; ``given`` wins over all."""
    values = settings_values(cls, flags, environ)
    values.update(given)
    return cls(**values)


def _from_flag(f: dataclasses.Field, flag: str, value: object, kind: type | None) -> object:
    if f.metadata.get("from_flag") is None and not (isinstance(value, str) and kind not in (None, str)):
        return value  # already typed (argparse); a string for a typed field (a dict of flags) is parsed below
    return _convert(f.metadata.get("from_flag"), f"--{flag.replace('_', '-')}", value, kind)


def _from_env(f: dataclasses.Field, env_name: str, raw: str, kind: type | None) -> object:
    return _convert(f.metadata.get("from_env"), env_name, raw, kind)


def _convert(convert: Callable[[object], object] | None, source: str, value: object, kind: type | None) -> object:
    """``convert(value)`` when the field has a converter, else the text parsed as ``kind``; SettingsError naming ``source``."""
    if convert is None:
        return parse_env_value(source, str(value), kind or str)
    try:
        return convert(value)
    except (TypeError, ValueError):
        raise SettingsError(f"Expected {source} to be a number. Received: {value!r}") from None


def _scalar_type(hint: object) -> type | None:
    """bool, int, float, str, Path or tuple (of str) for a field's type hint, ``X | None`` unwrapped; None otherwise."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        hint = options[0] if len(options) == 1 else None
    if typing.get_origin(hint) is tuple and typing.get_args(hint) in ((str, ...),):
        return tuple
    return hint if hint in (bool, int, float, str, Path) else None


def parse_env_value(env_name: str, raw: str, kind: type) -> object:
    """A variable's (or flag's) text as ``kind`` (bool, int, float, Path, tuple of str, or str); SettingsError if it is not."""
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError(raw)
            return lowered in ("1", "true", "yes", "on")
        if kind is Path:
            return Path(raw).expanduser()
        if kind is tuple:
            return comma_list(raw)
        if kind in (int, float):
            return kind(raw)
        return raw
    except ValueError:
        raise SettingsError(f"Expected {env_name} to be a {kind.__name__}. Received: {raw!r}") from None


def check_range(name: str, value: object, low: float, high: float, *, integer: bool = False) -> None:
    """The one range check: ``low <= value <= high`` for a number (an int when ``integer``), never a bool."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        expected = f"to be an integer from {low} to {high}" if integer else f"between {low} and {high}"
        raise SettingsError(f"Expected {name} {expected}. Received: {name}={value!r}")


# -- the backend's settings ---------------------------------------------------------------


@dataclass(frozen=True)
class ModelSettings:
    """Which model to serve and where its files are."""

    env_prefix: ClassVar[str] = ENV_PREFIX

    name: str = setting(DEFAULT_MODEL, env="WARMSERVE_MODEL", flag="model")
    #: a local weights file (resnet50), or "random" for timing-only random weights
    weights: str | None = None
    #: labels file for a user's own .keras model (one class name a line)
    labels: Path | None = None
    #: preprocessing for a user's own model: raw | unit | tf | caffe | torch
    preprocess: str = "raw"
    cache_dir: Path = field(default_factory=default_cache_dir)
    #: auto | litert | tensorflow (the monolith always runs TensorFlow)
    runtime: str = "auto"

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise SettingsError(f"Expected runtime to be one of auto, litert, tensorflow. Received: runtime={self.runtime!r}")
        if not self.name:
            raise SettingsError("Expected a model name or a path to a .keras file. Received: model=''")
        for name in ("labels", "cache_dir"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value).expanduser())
        if self.preprocess not in PREPROCESS_MODES:
            raise SettingsError(
                f"Expected preprocess to be one of raw, unit, tf, caffe, torch. Received: preprocess={self.preprocess!r}"
            )


@dataclass(frozen=True)
class ServerSettings:
    """How the backend listens, batches and guards itself."""

    env_prefix: ClassVar[str] = ENV_PREFIX

    #: built from the same flags and environment by its own build_settings call (see model_settings_from)
    model: ModelSettings = setting(default_factory=ModelSettings, env=None, flag=None)
    #: ROUTER address to bind (a standalone server)
    bind: str = DEFAULT_ADDRESS
    #: broker address(es) to connect to as a worker instead of binding (scale-out); a comma-separated list = one link per broker
    connect: str | None = None
    max_batch: int = 16
    max_wait_ms: float = 2.0
    queue_size: int = 256
    #: flag --max-image-mb (MiB); variable WARMSERVE_MAX_IMAGE_BYTES (bytes)
    max_image_bytes: int = setting(20 * MIB, flag="max_image_mb", from_flag=megabytes)
    max_pixels: int = 64_000_000
    max_header_bytes: int = 4096
    decode_threads: int = 2
    #: how LiteRT forward passes run: auto | wide | pool | adaptive (model_backend/execution.py); TensorFlow always batches
    execution: str = "auto"
    #: pool / adaptive: the most waiting requests one single-thread interpreter takes as one batch (1 = one at a time);
    #: 2 measured +7.7% images/s at c=16 over 1, interleaved on a quiet 2-core machine (model_backend/execution.py)
    pool_batch: int = 2
    #: TensorFlow intra-op threads; 0 lets TensorFlow choose (all cores)
    intra_op_threads: int = 0
    inter_op_threads: int = 1
    #: warm every batch size 1..max_batch (True) or only 1 and max_batch
    warmup_all_batch_sizes: bool = True
    heartbeat_ms: int = 1000
    log_level: str = "INFO"
    #: serve Prometheus metrics over HTTP on this port (0 = a free one; unset = off); see model_backend/metrics.py
    metrics_port: int | None = None
    #: the address the metrics endpoint binds (loopback unless told otherwise)
    metrics_host: str = "127.0.0.1"
    #: CURVE keys folder (see model_backend/security.py); needed to bind/connect beyond loopback
    keys_dir: Path | None = None
    #: allow a non-loopback tcp:// address without keys (unauthenticated; logs a warning)
    insecure: bool = False

    def __post_init__(self) -> None:
        _check_address("bind", self.bind)
        if self.connect is not None:
            endpoint_list("connect", self.connect)
        check_range("max_batch", self.max_batch, 1, 1024)
        check_range("max_wait_ms", self.max_wait_ms, 0, 10_000)
        check_range("queue_size", self.queue_size, 1, 1_000_000)
        check_range("max_image_bytes", self.max_image_bytes, 1, 1 << 31)
        check_range("max_pixels", self.max_pixels, 1, 1 << 31)
        check_range("max_header_bytes", self.max_header_bytes, 64, 1 << 20)
        check_range("decode_threads", self.decode_threads, 1, 256)
        check_range("pool_batch", self.pool_batch, 1, 64, integer=True)
        if self.execution not in EXECUTIONS:
            raise SettingsError(f"Expected execution to be one of {', '.join(EXECUTIONS)}. Received: execution={self.execution!r}")
        check_range("intra_op_threads", self.intra_op_threads, 0, 1024)
        check_range("inter_op_threads", self.inter_op_threads, 0, 1024)
        check_range("heartbeat_ms", self.heartbeat_ms, 50, 60_000)
        if self.metrics_port is not None:
            check_range("metrics_port", self.metrics_port, 0, 65_535, integer=True)
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError(f"Expected log_level DEBUG, INFO, WARNING or ERROR. Received: log_level={self.log_level!r}")
        # a worker connects with its worker pair; a standalone backend binds and admits client keys
        endpoint, needs = (_named("connect", self.connect_addresses), ("worker",)) if self.connect is not None else ({"bind": self.bind}, ("clients",))
        _check_security(self, endpoint, needs)

    @property
    def connect_addresses(self) -> tuple[str, ...]:
        """The brokers this worker connects to (``connect`` split at commas); () for a standalone server."""
        return endpoint_list("connect", self.connect) if self.connect is not None else ()


@dataclass(frozen=True)
class ClientSettings:
    """How a client reaches the backend and how long it waits."""

    env_prefix: ClassVar[str] = ENV_PREFIX
    #: the backend or broker; a comma-separated list = fail over to the next when one is unavailable
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
        addresses = endpoint_list("address", self.address)
        check_range("timeout_ms", self.timeout_ms, 1, 600_000)
        check_range("retries", self.retries, 0, 20)
        check_range("connect_timeout_ms", self.connect_timeout_ms, 1, 600_000)
        check_range("ping_timeout_ms", self.ping_timeout_ms, 1, 600_000)
        _check_security(self, _named("address", addresses), ("client",))

    @property
    def addresses(self) -> tuple[str, ...]:
        """The backends or brokers to try, in order (``address`` split at commas)."""
        return endpoint_list("address", self.address)


@dataclass(frozen=True)
class BrokerSettings:
    """Where the broker listens for clients and workers, and how it watches workers.

    Variables are ``WARMSERVE_BROKER_*`` (a broker and a backend on one machine
    must not share ``WARMSERVE_QUEUE_SIZE``), except the keys, which every
    process of a machine shares.
    """

    env_prefix: ClassVar[str] = "WARMSERVE_BROKER_"

    frontend: str = DEFAULT_ADDRESS
    backend: str = DEFAULT_BROKER_BACKEND
    queue_size: int = 1024
    heartbeat_ms: int = 1000
    liveness: int = 3
    retries: int = 1
    #: CURVE keys folder: the server pair, clients/ (frontend) and workers/ (worker port) allow-lists
    keys_dir: Path | None = setting(None, env="WARMSERVE_KEYS_DIR")
    #: allow non-loopback tcp:// addresses without keys
    insecure: bool = setting(False, env="WARMSERVE_INSECURE")
    #: largest frame a client may send (ZMQ_MAXMSGSIZE on the frontend): as a backend's, a 20 MiB image plus a quarter
    max_frame_bytes: int = setting(25 * MIB, flag="max_frame_mb", from_flag=megabytes)

    def __post_init__(self) -> None:
        _check_address("frontend", self.frontend)
        _check_address("backend", self.backend)
        check_range("queue_size", self.queue_size, 1, 1_000_000)
        check_range("heartbeat_ms", self.heartbeat_ms, 50, 60_000)
        check_range("liveness", self.liveness, 2, 100)
        check_range("retries", self.retries, 0, 10)
        check_range("max_frame_bytes", self.max_frame_bytes, 4096, 1 << 31)
        _check_security(self, {"frontend": self.frontend, "backend": self.backend}, ("clients", "workers"))


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The model flags (``serve``, the monolith, the bench): read back by :func:`model_settings_from`."""
    parser.add_argument("--model", help="efficientnet-lite0 (default), resnet50, or a path to a .keras file")
    parser.add_argument("--weights", help="resnet50: a local ImageNet weights .h5, or 'random' (timing only)")
    parser.add_argument("--labels", type=Path, help="class names for a .keras model, one a line")
    parser.add_argument("--preprocess", choices=PREPROCESS_MODES, help="preprocessing for a .keras model (default raw 0..255)")
    parser.add_argument("--cache-dir", type=Path, help="where converted weights are cached")
    parser.add_argument("--runtime", choices=RUNTIMES,
                        help="auto (default: LiteRT on CPU when the converted model verifies, else TensorFlow), litert or tensorflow")


def model_settings_from(args: argparse.Namespace | Mapping[str, object] | None = None,
                        environ: Mapping[str, str] | None = None) -> ModelSettings:
    """Model flags, else WARMSERVE_MODEL / _WEIGHTS / _LABELS / _PREPROCESS / _CACHE_DIR / _RUNTIME, else defaults."""
    return build_settings(ModelSettings, args, environ)


def _check_security(settings: object, endpoints: dict, needs: tuple[str, ...]) -> None:
    """The loopback rule and the keys check (security.check_security), shared by every settings class."""
    from .security import check_security  # security imports this module

    keys_dir = check_security(endpoints, keys_dir=settings.keys_dir, insecure=settings.insecure, needs=needs)
    object.__setattr__(settings, "keys_dir", keys_dir)


#: most endpoints one list may name (a client's brokers, a worker's brokers)
MAX_ENDPOINTS = 16


def endpoint_list(name: str, text: str) -> tuple[str, ...]:
    """``"tcp://a:1, tcp://b:1"`` -> ("tcp://a:1", "tcp://b:1"), each checked; SettingsError naming the bad entry."""
    if not isinstance(text, str):
        raise SettingsError(f"Expected {name} to be one ZeroMQ endpoint or a comma-separated list of them. Received: {name}={text!r}")
    entries = [entry.strip() for entry in text.split(",")]
    if len(entries) > 1 and not all(entries):
        raise SettingsError(f"Expected {name} to be a comma-separated list of endpoints without empty entries. Received: {name}={text!r}")
    if len(entries) > MAX_ENDPOINTS:
        raise SettingsError(f"Expected at most {MAX_ENDPOINTS} endpoints in {name}. Received: {len(entries)} in {name}={text!r}")
    for entry in entries:
        _check_address(name, entry)
    duplicates = sorted({entry for entry in entries if entries.count(entry) > 1})
    if duplicates:
        raise SettingsError(f"Expected each endpoint once in {name}. Received: {', '.join(duplicates)} more than once in {name}={text!r}")
    return tuple(entries)


def _named(name: str, addresses: tuple[str, ...]) -> dict[str, str]:
    """Endpoints keyed for security.check_security's messages: ``name`` alone, or ``name[i]`` in a list."""
    if len(addresses) == 1:
        return {name: addresses[0]}
    return {f"{name}[{i}]": address for i, address in enumerate(addresses)}


def _check_address(name: str, address: str) -> None:
    if not isinstance(address, str) or "://" not in address:
        raise SettingsError(
            f"Expected {name} to be a ZeroMQ endpoint such as {DEFAULT_ADDRESS} or ipc:///tmp/warmserve. Received: {name}={address!r}"
        )
    transport = address.split("://", 1)[0]
    if transport not in ("tcp", "ipc", "inproc"):
        raise SettingsError(f"Expected {name} to use tcp://, ipc:// or inproc://. Received: {name}={address!r}")
