"""Every parser of untrusted frames raises only the protocol's typed error, whatever the bytes.

Classes of hostile input (each with several members, not one payload): deep
nesting, numbers out of range, NaN/Infinity, wrong types, invalid UTF-8, wrong
top-level types; then property-based fuzzing (Hypothesis) of parse_request,
parse_worker_ready, parse_worker_message and decode_reply with arbitrary bytes
and arbitrary JSON-like structures, bounded in examples and time.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model_backend import protocol
from model_backend.errors import BadReply, BadRequest

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DEEP = [b"[" * 1000, b"[" * 100_000, b'{"a":' * 1000, b'{"v": 1, "id": "x", "op": ' + b"[" * 3000, b"[" * 500 + b"]" * 500]
NUMBERS = [b"1" * 5000, b'{"v": 1e999}', b'{"v": -1e999}', b'{"v": NaN}', b'{"v": Infinity}', b'{"v": -Infinity}', b"1e999"]
ENCODINGS = [b"\xff\xfe", b"\xc3\x28", b'{"id": "\xed\xa0\x80"}', b"\x00" * 10, b""]
NOT_OBJECTS = [b"null", b"[]", b'"text"', b"42", b"true", b"[1, 2]"]
HOSTILE = DEEP + NUMBERS + ENCODINGS + NOT_OBJECTS


def header(**fields) -> bytes:
    return json.dumps({"v": 1, "id": "r1", "op": "classify", **fields}).encode()


@pytest.mark.parametrize("raw", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_headers_raise_bad_request_only(raw):
    with pytest.raises(BadRequest):
        protocol.parse_request([raw[: 1 << 20], b"img"], max_header_bytes=1 << 20)
    assert protocol.peek_header([raw]) == {}
    assert protocol.request_id_of([raw]) is None


@pytest.mark.parametrize("raw", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_replies_raise_bad_reply_only(raw):
    with pytest.raises(BadReply):
        protocol.decode_reply(raw)


@pytest.mark.parametrize(
    "fields",
    [{"top_k": 5.0}, {"top_k": -1}, {"top_k": 10**30}, {"top_k": None}, {"top_k": [5]}, {"top_k": {"n": 5}},
     {"v": "1"}, {"v": 1.0}, {"v": True}, {"id": 7}, {"id": ["a"]}, {"id": None}, {"op": ["classify"]}, {"op": {"x": 1}}, {"op": None}],
)
def test_wrong_field_types_are_bad_requests(fields):
    with pytest.raises(BadRequest, match="Expected"):
        protocol.parse_request([header(**fields), b"img"])


@pytest.mark.parametrize(
    "payload",
    [b"null", b"1e999", b"[]", b'"capacity"', b"[" * 1000, b"\xff", b"{}" + b" " * 20_000,
     b'{"capacity": null}', b'{"capacity": 1e999}', b'{"capacity": [4]}', b'{"capacity": "4"}', b'{"capacity": {"n": 4}}',
     b'{"capacity": 4.0}', b'{"capacity": true}', b'{"capacity": 0}', b'{"capacity": -3}', b'{"capacity": 100000000000000000000}',
     b'{"capacity": NaN}', b'{"capacity": 2, "pid": "12"}', b'{"capacity": 2, "model": 5}', b'{"capacity": 2, "input_size": [224]}',
     b'{"capacity": 2, "input_size": "224x224"}', b'{"capacity": 2, "max_wait_ms": Infinity}', b'{"capacity": 2, "num_classes": -1}'],
)
def test_malformed_ready_payloads_are_bad_requests(payload):
    with pytest.raises(BadRequest):
        protocol.parse_worker_ready(payload)


def test_ready_keeps_only_checked_fields():
    payload = json.dumps({"capacity": 8, "model": "stand-in", "pid": 42, "input_size": [32, 32], "max_wait_ms": 2,
                          "num_classes": 16, "secret": {"deep": [1]}}).encode()
    ready = protocol.parse_worker_ready(payload)
    assert (ready.capacity, ready.model, ready.pid, ready.input_size) == (8, "stand-in", 42, (32, 32))
    assert ready.static_info() == {"input_size": [32, 32], "num_classes": 16, "max_wait_ms": 2.0}
    assert protocol.parse_worker_ready(b"{}").capacity == 1


@pytest.mark.parametrize(
    "frame",
    [b'{"v": 1, "id": "r", "ok": "yes"}', b'{"v": 1, "id": 5, "ok": true}', b'{"v": 1, "id": "r", "ok": false}',
     b'{"v": 1, "id": "r", "ok": false, "error": "boom"}', b'{"v": 1, "id": "r", "ok": false, "error": {"code": 1, "message": "m"}}',
     b'{"v": 1, "id": "r"}'],
)
def test_malformed_reply_objects_are_bad_replies(frame):
    with pytest.raises(BadReply):
        protocol.decode_reply(frame)


def test_oversized_reply_is_refused_before_parsing():
    with pytest.raises(BadReply, match="at most"):
        protocol.decode_reply(b'{"ok": true, "pad": "' + b"x" * protocol.MAX_REPLY_BYTES + b'"}')


# -- the worker link framing --------------------------------------------------------------------


@pytest.mark.parametrize(
    "sender, command, frames",
    [
        ("worker", protocol.W_READY, (b'{"capacity": 2}',)),
        ("worker", protocol.W_HEARTBEAT, ()),
        ("worker", protocol.W_REPLY, (b"\x00" * 8, b'{"ok": true}')),
        ("worker", protocol.W_DISCONNECT, ()),
        ("broker", protocol.W_HEARTBEAT, ()),
        ("broker", protocol.W_REQUEST, (b"t1", b'{"v": 1}', b"image")),
        ("broker", protocol.W_DISCONNECT, ()),
    ],
)
def test_worker_messages_round_trip(sender, command, frames):
    encoded = protocol.encode_worker_message(command, *frames)
    assert encoded[:3] == [b"", protocol.WORKER_PROTOCOL, command]
    assert protocol.parse_worker_message(encoded, sender=sender) == protocol.WorkerMessage(command, frames)


@pytest.mark.parametrize(
    "sender, frames",
    [
        ("worker", [b"\x01", b"{}"]),  # the old unframed READY: a client routing id could look like it
        ("worker", [b"\x02"]),
        ("worker", [b"", b"", b'{"v": 1}']),  # a client request is not a worker message
        ("worker", [b"", b"MDPW01", protocol.W_READY, b"{}"]),  # wrong protocol tag
        ("worker", [protocol.WORKER_PROTOCOL, protocol.W_READY, b"{}"]),  # no delimiter
        ("worker", protocol.encode_worker_message(protocol.W_REQUEST, b"t", b"h")),  # a broker-only command
        ("broker", protocol.encode_worker_message(protocol.W_READY, b"{}")),  # a worker-only command
        ("broker", protocol.encode_worker_message(protocol.W_REPLY, b"t", b"r")),
        ("worker", protocol.encode_worker_message(protocol.W_REPLY, b"t")),  # frame count
        ("worker", protocol.encode_worker_message(protocol.W_REPLY, b"", b"r")),  # empty token
        ("worker", protocol.encode_worker_message(protocol.W_REPLY, b"t" * 65, b"r")),  # long token
        ("worker", protocol.encode_worker_message(protocol.W_HEARTBEAT) + [b"extra"]),
        ("broker", protocol.encode_worker_message(protocol.W_REQUEST, b"t")),
        ("broker", [b"", protocol.WORKER_PROTOCOL, b"SHUTDOWN"]),
        ("broker", []),
    ],
)
def test_malformed_worker_messages_are_bad_requests(sender, frames):
    with pytest.raises(BadRequest, match="Expected"):
        protocol.parse_worker_message(frames, sender=sender)


# -- property-based fuzzing ------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)
field_values = json_values | st.sampled_from([1, "classify", "ping", "info", "r1", 5, 0, -1, 10**20, True, None])
headerish = st.fixed_dictionaries({}, optional={"v": field_values, "id": field_values, "op": field_values, "top_k": field_values})
readyish = st.fixed_dictionaries(
    {}, optional={k: field_values for k in ("capacity", "model", "pid", "input_size", "num_classes", "max_batch", "max_wait_ms", "max_image_bytes", "decode_threads")}
)
replyish = st.fixed_dictionaries({}, optional={"v": field_values, "id": field_values, "ok": field_values, "error": json_values})
frames_of = st.lists(st.binary(max_size=64), max_size=6)


@FUZZ
@given(raw=st.binary(max_size=512), extra=frames_of)
def test_fuzz_parse_request_on_bytes(raw, extra):
    try:
        request = protocol.parse_request([raw, *extra])
    except BadRequest as exc:
        assert exc.message.startswith("Expected")
    else:
        assert request.op in protocol.OPS


@FUZZ
@given(fields=headerish, extra=frames_of)
def test_fuzz_parse_request_on_json(fields, extra):
    try:
        request = protocol.parse_request([json.dumps(fields).encode(), *extra])
    except BadRequest as exc:
        assert exc.message.startswith("Expected")
    else:
        assert isinstance(request.id, str) and 0 < len(request.id) <= protocol.MAX_ID_CHARS
        assert type(request.top_k) is int and 1 <= request.top_k <= protocol.MAX_TOP_K


@FUZZ
@given(payload=st.one_of(st.binary(max_size=256), readyish.map(lambda d: json.dumps(d).encode()), json_values.map(lambda v: json.dumps(v).encode())))
def test_fuzz_parse_worker_ready(payload):
    try:
        ready = protocol.parse_worker_ready(payload)
    except BadRequest:
        return
    assert type(ready.capacity) is int and 1 <= ready.capacity <= protocol.MAX_WORKER_CAPACITY
    json.dumps(ready.static_info())  # what the broker's info() passes on stays serialisable


@FUZZ
@given(frame=st.one_of(st.binary(max_size=256), replyish.map(lambda d: json.dumps(d).encode()), json_values.map(lambda v: json.dumps(v).encode())))
def test_fuzz_decode_reply(frame):
    try:
        reply = protocol.decode_reply(frame)
    except BadReply:
        return
    try:
        protocol.raise_for_error(reply)
    except Exception as exc:  # noqa: BLE001 - only the typed errors may come out
        assert type(exc).__module__ == "model_backend.errors"


@FUZZ
@given(frames=st.lists(st.one_of(st.binary(max_size=32), st.sampled_from([b"", protocol.WORKER_PROTOCOL, *protocol.WORKER_COMMANDS])), max_size=8),
       sender=st.sampled_from(["worker", "broker"]))
def test_fuzz_parse_worker_message(frames, sender):
    try:
        message = protocol.parse_worker_message(frames, sender=sender)
    except BadRequest:
        return
    assert message.command in protocol.WORKER_COMMANDS


classifyish = st.fixed_dictionaries(
    {}, optional={"predictions": json_values | st.lists(st.fixed_dictionaries({}, optional={"index": field_values, "label": field_values, "p": field_values}), max_size=3),
                  "timings_ms": json_values | st.fixed_dictionaries({}, optional={name: field_values for name in protocol.STAGES}),
                  "batch_size": field_values, "model": field_values, "roundtrip_ms": field_values}
)


@FUZZ
@given(reply=st.one_of(classifyish, json_values))
def test_fuzz_classify_reply_from_wire(reply):
    try:
        typed = protocol.ClassifyReply.from_wire(reply)
    except BadReply as exc:
        assert exc.message.startswith("Expected")
        return
    assert protocol.ClassifyReply.from_wire(json.loads(json.dumps(typed.to_wire()))) == typed
