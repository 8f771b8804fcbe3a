"""The ZeroMQ wire protocol, shared by client, server and broker (pure functions, no TensorFlow).

A request is a multipart message, after the routing envelope:

    frame 0: UTF-8 JSON header {"v": 1, "id": "...", "op": "classify"|"ping"|"info", "top_k": 5}
    frame 1: raw image bytes (classify only)

Clients send an empty delimiter frame first (as REQ does), so the server can
split the routing envelope from the body even behind a broker. A reply is the
same envelope plus one JSON frame:

    {"v": 1, "id": ..., "ok": true, ...}  or  {"v": 1, "id": ..., "ok": false, "error": {"code", "message"}}

The ops are one table, :data:`OP_SPECS` (classify, ping, info): what each
carries and who answers it. Server, broker and client dispatch from it, so a
new op (say ``explain``) is one entry here plus one handler in the server.
A classify reply has one typed schema, :class:`ClassifyReply` (predictions,
timings by stage in the order :data:`STAGES`, batch size, model), which the
server builds and every consumer reads (``to_wire`` / ``from_wire``).

Between a worker and the broker every message, both ways, starts with an empty
delimiter, the tag :data:`WORKER_PROTOCOL` and one command frame (the framing
of the ZeroMQ guide's Majordomo protocol), so client traffic and worker control
can never pass for each other:

    READY      worker -> broker   [JSON: capacity, model, pid, ...]    (see parse_worker_ready)
    HEARTBEAT  both ways          []
    REQUEST    broker -> worker   [token, header, image...]             (the client's envelope stays in the broker)
    REPLY      worker -> broker   [token, reply]
    DISCONNECT both ways          []   (broker: "register again"; worker: "I am leaving")

Nothing on the wire is trusted. Every JSON frame goes through one loader,
:func:`load_json_object`, which bounds the size, refuses NaN/Infinity and
turns *every* failure (deep nesting, invalid UTF-8, huge numbers...) into the
caller's typed error: :class:`~model_backend.errors.BadRequest` for what
clients and workers send, :class:`~model_backend.errors.BadReply` for what a
backend sends back. Messages say what was expected and what was received.
Never pickle.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields

from .errors import BackendError, BadReply, BadRequest, error_from_code

VERSION = 1
OP_CLASSIFY = "classify"
OP_PING = "ping"
OP_INFO = "info"

MAX_HEADER_BYTES = 4096
MAX_ID_CHARS = 128
DEFAULT_TOP_K = 5
MAX_TOP_K = 100
#: largest reply frame a client (or the broker, from a worker) accepts
MAX_REPLY_BYTES = 4 * 1024 * 1024
#: most frames a request may have: routing hops + delimiter + header + image
MAX_REQUEST_FRAMES = 16
#: least slack on top of the image limit in a frame size limit (see frame_limit)
FRAME_SLACK_BYTES = 1024 * 1024

# -- the worker <-> broker link (Majordomo-style framing) ---------------------------
WORKER_PROTOCOL = b"WSW01"
W_READY = b"READY"
W_HEARTBEAT = b"HEARTBEAT"
W_REQUEST = b"REQUEST"
W_REPLY = b"REPLY"
W_DISCONNECT = b"DISCONNECT"
WORKER_COMMANDS = (W_READY, W_HEARTBEAT, W_REQUEST, W_REPLY, W_DISCONNECT)
MAX_READY_BYTES = 16 * 1024
MAX_TOKEN_BYTES = 64
MAX_WORKER_CAPACITY = 4096


@dataclass(frozen=True)
class OpSpec:
    """One op of the wire: what a request for it carries and who answers it."""

    name: str
    #: a second frame of image bytes and a ``top_k`` in the header (else the header alone)
    carries_image: bool = False
    #: the broker answers it itself, for its whole pool (else it goes to a worker)
    answered_by_broker: bool = False
    #: the client resends it after a timeout (Lazy Pirate); else one attempt
    retried: bool = True
    #: the client uses its short ping timeout instead of the reply timeout
    short_timeout: bool = False


#: every op, by name: the one place to add an op (then one handler in server.py)
OP_SPECS: dict[str, OpSpec] = {
    spec.name: spec
    for spec in (
        OpSpec(OP_CLASSIFY, carries_image=True),
        OpSpec(OP_PING, answered_by_broker=True, retried=False, short_timeout=True),
        OpSpec(OP_INFO, answered_by_broker=True, retried=False),
    )
}
OPS = tuple(OP_SPECS)


def frame_limit(max_image_bytes: int) -> int:
    """The largest frame a request may have (ZMQ_MAXMSGSIZE): the image limit plus a quarter (at least 1 MiB).

    An image a little over the limit still arrives and gets a typed ``too_large``
    reply; a frame far larger cuts its sender off before it is buffered.
    """
    return max_image_bytes + max(FRAME_SLACK_BYTES, max_image_bytes // 4)


@dataclass(frozen=True)
class Request:
    """A validated request: what the server acts on."""

    id: str
    op: str
    top_k: int = DEFAULT_TOP_K
    image: bytes | None = None


# -- one loader for every untrusted JSON frame ------------------------------------------


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is out of range")
    return value


def load_json_object(raw: bytes, *, max_bytes: int, what: str = "frame", error: type[BackendError] = BadRequest) -> dict:
    """Parse one untrusted frame as a JSON object; raise only ``error`` (BadRequest by default).

    Bounded before parsing; rejects invalid UTF-8, NaN/Infinity, out-of-range
    floats, over-long integers, nesting deep enough to exhaust the stack, and
    anything that is not an object.
    """
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise error(f"Expected the {what} to be bytes. Received: {type(raw).__name__}")
    if len(raw) > max_bytes:
        raise error(f"Expected a {what} of at most {max_bytes} bytes. Received: {len(raw)} bytes")
    try:
        value = json.loads(bytes(raw).decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, RecursionError, OverflowError, TypeError, MemoryError) as exc:  # JSONDecodeError, UnicodeDecodeError are ValueErrors
        raise error(f"Expected the {what} to be a UTF-8 JSON object. Received: invalid JSON ({exc.__class__.__name__})") from None
    if not isinstance(value, dict):
        raise error(f"Expected the {what} to be a JSON object. Received: {type(value).__name__}")
    return value


def encode_request(request_id: str, op: str, *, top_k: int = DEFAULT_TOP_K, image: bytes | None = None) -> list[bytes]:
    """Frames a client sends (after the empty delimiter, which the client adds)."""
    header = {"v": VERSION, "id": request_id, "op": op}
    if OP_SPECS[op].carries_image:
        header["top_k"] = top_k
    frames = [json.dumps(header, separators=(",", ":")).encode()]
    if image is not None:
        frames.append(image)
    return frames


def split_envelope(frames: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """Split a ROUTER-received message into (envelope, body).

    The envelope ends at the first empty frame (REQ clients and our DEALER
    clients send one). A DEALER peer that sends no delimiter has a one-frame
    envelope: its routing identity.
    """
    for index in range(1, len(frames)):
        if frames[index] == b"":
            return frames[: index + 1], frames[index + 1 :]
    return frames[:1], frames[1:]


def parse_request(body: list[bytes], *, max_header_bytes: int = MAX_HEADER_BYTES) -> Request:
    """Validate the body frames of a request; raise BadRequest (only) saying what is wrong."""
    if not body:
        raise BadRequest("Expected a JSON header frame. Received: no frames")
    header = load_json_object(body[0], max_bytes=max_header_bytes, what="header")
    version = header.get("v")
    if type(version) is not int or version != VERSION:
        raise BadRequest(f"Expected protocol version v={VERSION}. Received: v={_short(version)}")
    request_id = header.get("id")
    if not isinstance(request_id, str) or not request_id or len(request_id) > MAX_ID_CHARS:
        raise BadRequest(f"Expected id to be a non-empty string of at most {MAX_ID_CHARS} characters. Received: id={_short(request_id)}")
    op = header.get("op")
    if not isinstance(op, str) or op not in OPS:
        raise BadRequest(f"Expected op to be one of {', '.join(OPS)}. Received: op={_short(op)}")
    if not OP_SPECS[op].carries_image:
        if len(body) != 1:
            raise BadRequest(f"Expected a single header frame for op={op}. Received: {len(body)} frames")
        return Request(id=request_id, op=op)
    top_k = header.get("top_k", DEFAULT_TOP_K)
    if type(top_k) is not int or not 1 <= top_k <= MAX_TOP_K:
        raise BadRequest(f"Expected top_k to be an integer from 1 to {MAX_TOP_K}. Received: top_k={_short(top_k)}")
    if len(body) != 2:
        raise BadRequest(f"Expected 2 frames for {op} (header, image bytes). Received: {len(body)} frames")
    return Request(id=request_id, op=op, top_k=top_k, image=bytes(body[1]))


def peek_header(body: list[bytes]) -> dict:
    """Best-effort look at a request's header without validating it ({} when unreadable).

    For matching an error reply to a malformed request. Never raises.
    """
    if not body:
        return {}
    try:
        return load_json_object(body[0], max_bytes=MAX_HEADER_BYTES, what="header")
    except BadRequest:
        return {}


def request_id_of(body: list[bytes] | dict) -> str | None:
    """The id of a request (its body frames or a peeked header), when it is a usable id."""
    header = body if isinstance(body, dict) else peek_header(body)
    request_id = header.get("id")
    return request_id if isinstance(request_id, str) and len(request_id) <= MAX_ID_CHARS else None


def encode_reply(request_id: str | None, payload: dict) -> bytes:
    """A success reply frame: ``payload`` plus v, id and ok=true."""
    reply = {"v": VERSION, "id": request_id, "ok": True}
    reply.update(payload)
    return json.dumps(reply, separators=(",", ":")).encode()


def encode_error(request_id: str | None, error: BackendError) -> bytes:
    """An error reply frame."""
    return json.dumps({"v": VERSION, "id": request_id, "ok": False, "error": error.to_wire()}, separators=(",", ":")).encode()


def decode_reply(frame: bytes, *, max_bytes: int = MAX_REPLY_BYTES) -> dict:
    """Parse a reply frame (client side); raise only BadReply. Error replies are returned as dicts (see raise_for_error)."""
    reply = load_json_object(frame, max_bytes=max_bytes, what="reply from the backend", error=BadReply)
    if type(reply.get("ok")) is not bool:
        raise BadReply(f"Expected a reply object with a boolean 'ok' field. Received: ok={_short(reply.get('ok'))}")
    reply_id = reply.get("id")
    if reply_id is not None and not isinstance(reply_id, str):
        raise BadReply(f"Expected the reply id to be a string or null. Received: id={_short(reply_id)}")
    if not reply["ok"]:
        error = reply.get("error")
        if not isinstance(error, dict) or not isinstance(error.get("code"), str) or not isinstance(error.get("message"), str):
            raise BadReply(f"Expected an error reply to carry {{'code': str, 'message': str}}. Received: error={_short(error)}")
    return reply


def raise_for_error(reply: dict) -> dict:
    """Return ``reply`` when ok, else raise the typed error it carries."""
    if reply.get("ok"):
        return reply
    error = reply.get("error")
    error = error if isinstance(error, dict) else {}
    raise error_from_code(str(error.get("code", "internal")), str(error.get("message", "unknown backend error")))


# -- the classify reply: one typed schema ---------------------------------------------


@dataclass(frozen=True)
class StageTimings:
    """Milliseconds a classify request spent in each stage, in pipeline order (``total`` is the whole stay)."""

    queue: float
    decode: float
    preprocess: float
    inference: float
    total: float

    def to_wire(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in STAGES}

    @classmethod
    def from_wire(cls, value: object) -> "StageTimings":
        """Validate ``timings_ms``: every stage a finite number >= 0 (unknown keys ignored); raise only BadReply."""
        if not isinstance(value, Mapping):
            raise BadReply(f"Expected timings_ms to be an object with {', '.join(STAGES)}. Received: {_short(value)}")
        times = {}
        for name in STAGES:
            number = value.get(name)
            if type(number) not in (int, float) or not 0 <= number < math.inf:
                raise BadReply(f"Expected timings_ms.{name} to be a number of milliseconds >= 0. Received: {name}={_short(number)}")
            times[name] = float(number)
        return cls(**times)


#: the stages of a classify request, in the order they happen (the names in ``timings_ms``)
STAGES: tuple[str, ...] = tuple(f.name for f in fields(StageTimings))
#: the stages of a monolith run (model_backend/monolith.py's ``timings_ms``), in order; ``total`` includes start-up
MONOLITH_STAGES: tuple[str, ...] = ("startup", "import", "model_load", "preprocess", "inference", "total")


@dataclass(frozen=True)
class Prediction:
    """One class of the top-k: its ImageNet (or model) index, its name and its probability."""

    index: int
    label: str
    p: float

    def to_wire(self) -> dict:
        return {"index": self.index, "label": self.label, "p": self.p}

    @classmethod
    def from_wire(cls, value: object) -> "Prediction":
        if not isinstance(value, Mapping):
            raise BadReply(f"Expected a prediction {{'index', 'label', 'p'}}. Received: {_short(value)}")
        index, label, p = value.get("index"), value.get("label"), value.get("p")
        if type(index) is not int or index < 0:
            raise BadReply(f"Expected a prediction's index to be an integer >= 0. Received: index={_short(index)}")
        if not isinstance(label, str):
            raise BadReply(f"Expected a prediction's label to be a string. Received: label={_short(label)}")
        if type(p) not in (int, float) or not 0 <= p <= 1:
            raise BadReply(f"Expected a prediction's p to be a probability from 0 to 1. Received: p={_short(p)}")
        return cls(index, label, float(p))


@dataclass(frozen=True)
class ClassifyReply:
    """A successful classify reply: what the server sends and every consumer reads.

    ``roundtrip_ms`` is not sent by the server: the client adds it (the time the
    caller waited, network included).
    """

    predictions: tuple[Prediction, ...]
    timings_ms: StageTimings
    batch_size: int
    model: str
    roundtrip_ms: float | None = None

    @property
    def top(self) -> Prediction | None:
        return self.predictions[0] if self.predictions else None

    def to_wire(self) -> dict:
        """The reply's payload (:func:`encode_reply` adds v, id and ok)."""
        payload = {
            "predictions": [prediction.to_wire() for prediction in self.predictions],
            "timings_ms": self.timings_ms.to_wire(),
            "batch_size": self.batch_size,
            "model": self.model,
        }
        if self.roundtrip_ms is not None:
            payload["roundtrip_ms"] = self.roundtrip_ms
        return payload

    @classmethod
    def from_wire(cls, reply: object) -> "ClassifyReply":
        """Validate a classify reply (a decoded frame or a payload; v, id and ok are ignored); raise only BadReply."""
        if not isinstance(reply, Mapping):
            raise BadReply(f"Expected a classify reply object. Received: {type(reply).__name__}")
        predictions = reply.get("predictions")
        if not isinstance(predictions, (list, tuple)) or len(predictions) > MAX_TOP_K:
            raise BadReply(f"Expected predictions to be a list of at most {MAX_TOP_K}. Received: predictions={_short(predictions)}")
        batch_size, model = reply.get("batch_size"), reply.get("model")
        if type(batch_size) is not int or batch_size < 1:
            raise BadReply(f"Expected batch_size to be an integer >= 1. Received: batch_size={_short(batch_size)}")
        if not isinstance(model, str) or not model:
            raise BadReply(f"Expected model to be a non-empty string. Received: model={_short(model)}")
        roundtrip = reply.get("roundtrip_ms")
        if roundtrip is not None and (type(roundtrip) not in (int, float) or not 0 <= roundtrip < math.inf):
            raise BadReply(f"Expected roundtrip_ms to be a number of milliseconds >= 0. Received: roundtrip_ms={_short(roundtrip)}")
        return cls(
            predictions=tuple(Prediction.from_wire(item) for item in predictions),
            timings_ms=StageTimings.from_wire(reply.get("timings_ms")),
            batch_size=batch_size,
            model=model,
            roundtrip_ms=None if roundtrip is None else float(roundtrip),
        )


# -- the worker <-> broker link ---------------------------------------------------------


@dataclass(frozen=True)
class WorkerMessage:
    """One validated worker-link message: its command and the frames after it."""

    command: bytes
    frames: tuple[bytes, ...] = ()


def encode_worker_message(command: bytes, *frames: bytes) -> list[bytes]:
    """``[b"", WORKER_PROTOCOL, command, *frames]``: what a worker's DEALER or the broker (after the identity) sends."""
    if command not in WORKER_COMMANDS:
        raise ValueError(f"Expected a worker command from {WORKER_COMMANDS}. Received: {command!r}")
    return [b"", WORKER_PROTOCOL, command, *frames]


def parse_worker_message(frames: list[bytes], *, sender: str) -> WorkerMessage:
    """Validate a worker-link message (without the broker's identity frame); raise only BadRequest.

    ``sender`` is "worker" (checked by the broker) or "broker" (checked by a
    worker): each side accepts only the commands its peer may send, each with
    its exact frame count.
    """
    if len(frames) < 3 or frames[0] != b"" or frames[1] != WORKER_PROTOCOL:
        head = [bytes(frame[:16]) for frame in frames[:3]]
        raise BadRequest(f"Expected a worker-link message [b'', {WORKER_PROTOCOL!r}, command, ...]. Received: {_short(head)}")
    command, rest = bytes(frames[2]), tuple(frames[3:])
    if sender == "worker":
        allowed = {W_READY: (1, 1), W_HEARTBEAT: (0, 0), W_REPLY: (2, 2), W_DISCONNECT: (0, 0)}
    else:
        allowed = {W_HEARTBEAT: (0, 0), W_REQUEST: (2, MAX_REQUEST_FRAMES), W_DISCONNECT: (0, 0)}
    if command not in allowed:
        raise BadRequest(f"Expected a {sender} command from {sorted(allowed)}. Received: {_short(command)}")
    low, high = allowed[command]
    if not low <= len(rest) <= high:
        raise BadRequest(f"Expected {low}..{high} frames after {command.decode()}. Received: {len(rest)}")
    if command in (W_REQUEST, W_REPLY) and not 0 < len(rest[0]) <= MAX_TOKEN_BYTES:
        raise BadRequest(f"Expected a request token of 1..{MAX_TOKEN_BYTES} bytes. Received: {len(rest[0])} bytes")
    return WorkerMessage(command, rest)


@dataclass(frozen=True)
class WorkerReady:
    """What the broker keeps from a worker's READY: only the fields it uses, each type-checked."""

    capacity: int = 1
    model: str | None = None
    runtime: str | None = None
    pid: int | None = None
    input_size: tuple[int, int] | None = None
    num_classes: int | None = None
    max_batch: int | None = None
    max_wait_ms: float | None = None
    max_image_bytes: int | None = None
    max_pixels: int | None = None
    decode_threads: int | None = None

    def static_info(self) -> dict:
        """The model and batching facts the broker's info() passes on (JSON-ready)."""
        names = ("runtime", "input_size", "num_classes", "max_batch", "max_wait_ms", "max_image_bytes", "max_pixels",
                 "decode_threads")
        values = {name: getattr(self, name) for name in names if getattr(self, name) is not None}
        if "input_size" in values:
            values["input_size"] = list(values["input_size"])
        return values


#: a runtime's name in a READY: letters, digits, '-' and '_', at most 32 characters
RUNTIME_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_READY_INTS = {"pid": (0, 1 << 31), "num_classes": (1, 1 << 24), "max_batch": (1, 1 << 20), "max_image_bytes": (1, 1 << 40),
               "max_pixels": (1, 1 << 40), "decode_threads": (1, 4096)}


def parse_worker_ready(payload: bytes) -> WorkerReady:
    """Validate a READY payload; raise only BadRequest. Unknown keys are ignored; known ones must have their type."""
    info = load_json_object(payload, max_bytes=MAX_READY_BYTES, what="READY payload")
    values: dict = {}
    capacity = info.get("capacity", 1)
    if type(capacity) is not int or not 1 <= capacity <= MAX_WORKER_CAPACITY:
        raise BadRequest(f"Expected capacity to be an integer from 1 to {MAX_WORKER_CAPACITY}. Received: capacity={_short(capacity)}")
    values["capacity"] = capacity
    model = info.get("model")
    if model is not None:
        if not isinstance(model, str) or not 0 < len(model) <= 200:
            raise BadRequest(f"Expected model to be a name of at most 200 characters. Received: model={_short(model)}")
        values["model"] = model
    runtime = info.get("runtime")
    if runtime is not None:
        if not isinstance(runtime, str) or not RUNTIME_NAME.fullmatch(runtime):
            raise BadRequest(f"Expected runtime to be a short name such as litert or tensorflow. Received: runtime={_short(runtime)}")
        values["runtime"] = runtime
    for name, (low, high) in _READY_INTS.items():
        value = info.get(name)
        if value is None:
            continue
        if type(value) is not int or not low <= value <= high:
            raise BadRequest(f"Expected {name} to be an integer from {low} to {high}. Received: {name}={_short(value)}")
        values[name] = value
    size = info.get("input_size")
    if size is not None:
        if not isinstance(size, list) or len(size) != 2 or any(type(v) is not int or not 1 <= v <= 1 << 16 for v in size):
            raise BadRequest(f"Expected input_size to be [height, width] in pixels. Received: input_size={_short(size)}")
        values["input_size"] = (size[0], size[1])
    wait = info.get("max_wait_ms")
    if wait is not None:
        if type(wait) not in (int, float) or not 0 <= wait <= 60_000:
            raise BadRequest(f"Expected max_wait_ms to be a number from 0 to 60000. Received: max_wait_ms={_short(wait)}")
        values["max_wait_ms"] = float(wait)
    return WorkerReady(**values)


def _short(value: object, limit: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - e.g. RecursionError on deeply nested values; a message must never fail
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
