"""The ZeroMQ wire protocol, shared by client, server and broker (pure functions, no TensorFlow).

A request is a multipart message, after the routing envelope:

    frame 0: UTF-8 JSON header {"v": 1, "id": "...", "op": "classify"|"ping"|"info", "top_k": 5}
    frame 1: raw image bytes (classify only)

Clients send an empty delimiter frame first (as REQ does), so the server can
split the routing envelope from the body even behind a broker. A reply is the
same envelope plus one JSON frame:

    {"v": 1, "id": ..., "ok": true, ...}  or  {"v": 1, "id": ..., "ok": false, "error": {"code", "message"}}

Nothing on the wire is trusted: :func:`parse_request` checks every field and
raises :class:`~model_backend.errors.BadRequest` with a message that says what
was expected and what was received. Never pickle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .errors import BackendError, BadRequest, error_from_code

VERSION = 1
OP_CLASSIFY = "classify"
OP_PING = "ping"
OP_INFO = "info"
OPS = (OP_CLASSIFY, OP_PING, OP_INFO)

MAX_HEADER_BYTES = 4096
MAX_ID_CHARS = 128
DEFAULT_TOP_K = 5
MAX_TOP_K = 100

# Broker <-> worker signalling (the load-balancing broker, see broker.py).
WORKER_READY = b"\x01"
WORKER_HEARTBEAT = b"\x02"


@dataclass(frozen=True)
class Request:
    """A validated request: what the server acts on."""

    id: str
    op: str
    top_k: int = DEFAULT_TOP_K
    image: bytes | None = None


def encode_request(request_id: str, op: str, *, top_k: int = DEFAULT_TOP_K, image: bytes | None = None) -> list[bytes]:
    """Frames a client sends (after the empty delimiter, which the client adds)."""
    header = {"v": VERSION, "id": request_id, "op": op}
    if op == OP_CLASSIFY:
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
    """Validate the body frames of a request; raise BadRequest saying what is wrong."""
    if not body:
        raise BadRequest("Expected a JSON header frame. Received: no frames")
    raw_header = body[0]
    if len(raw_header) > max_header_bytes:
        raise BadRequest(f"Expected a header of at most {max_header_bytes} bytes. Received: {len(raw_header)} bytes")
    try:
        header = json.loads(raw_header.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"Expected the first frame to be a UTF-8 JSON object. Received: invalid JSON ({exc.__class__.__name__})") from None
    if not isinstance(header, dict):
        raise BadRequest(f"Expected the header to be a JSON object. Received: {type(header).__name__}")
    version = header.get("v")
    if version != VERSION:
        raise BadRequest(f"Expected protocol version v={VERSION}. Received: v={version!r}")
    request_id = header.get("id")
    if not isinstance(request_id, str) or not request_id or len(request_id) > MAX_ID_CHARS:
        raise BadRequest(f"Expected id to be a non-empty string of at most {MAX_ID_CHARS} characters. Received: id={_short(request_id)}")
    op = header.get("op")
    if op not in OPS:
        raise BadRequest(f"Expected op to be one of {', '.join(OPS)}. Received: op={_short(op)}")
    if op != OP_CLASSIFY:
        if len(body) != 1:
            raise BadRequest(f"Expected a single header frame for op={op}. Received: {len(body)} frames")
        return Request(id=request_id, op=op)
    top_k = header.get("top_k", DEFAULT_TOP_K)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
        raise BadRequest(f"Expected top_k to be an integer from 1 to {MAX_TOP_K}. Received: top_k={_short(top_k)}")
    if len(body) != 2:
        raise BadRequest(f"Expected 2 frames for classify (header, image bytes). Received: {len(body)} frames")
    return Request(id=request_id, op=op, top_k=top_k, image=body[1])


def peek_header(body: list[bytes]) -> dict:
    """Best-effort look at a request's header without validating it ({} when unreadable).

    For routing (the broker) and for matching an error reply to a malformed request.
    """
    try:
        header = json.loads(body[0][:MAX_HEADER_BYTES].decode("utf-8"))
    except (IndexError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return header if isinstance(header, dict) else {}


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


def decode_reply(frame: bytes) -> dict:
    """Parse a reply frame (client side). Error replies are returned as dicts; see :func:`raise_for_error`."""
    try:
        reply = json.loads(frame.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadRequest("Expected a JSON reply from the backend. Received: undecodable bytes") from None
    if not isinstance(reply, dict) or "ok" not in reply:
        raise BadRequest("Expected a reply object with an 'ok' field. Received: something else")
    return reply


def raise_for_error(reply: dict) -> dict:
    """Return ``reply`` when ok, else raise the typed error it carries."""
    if reply.get("ok"):
        return reply
    error = reply.get("error") or {}
    raise error_from_code(str(error.get("code", "internal")), str(error.get("message", "unknown backend error")))


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
