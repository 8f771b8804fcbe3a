"""Unit tests for the wire protocol: round trips and every validation error."""

import json

import pytest

from model_backend import protocol
from model_backend.errors import BadImage, BackendError, BadReply, BadRequest, Overloaded


def body_of(header: dict, *extra: bytes) -> list[bytes]:
    return [json.dumps(header).encode(), *extra]


def test_classify_request_round_trip():
    frames = protocol.encode_request("abc", protocol.OP_CLASSIFY, top_k=3, image=b"\x89PNG")
    request = protocol.parse_request(frames)
    assert request == protocol.Request(id="abc", op="classify", top_k=3, image=b"\x89PNG")


@pytest.mark.parametrize("op", ["ping", "info"])
def test_ping_and_info_round_trip(op):
    assert protocol.parse_request(protocol.encode_request("x1", op)) == protocol.Request(id="x1", op=op)


def test_envelope_split_with_delimiter_and_broker_hops():
    assert protocol.split_envelope([b"id", b"", b"hdr", b"img"]) == ([b"id", b""], [b"hdr", b"img"])
    assert protocol.split_envelope([b"broker", b"client", b"", b"hdr"]) == ([b"broker", b"client", b""], [b"hdr"])
    assert protocol.split_envelope([b"id", b"hdr"]) == ([b"id"], [b"hdr"])


@pytest.mark.parametrize(
    "body, fragment",
    [
        ([], "no frames"),
        ([b"\xff\xfe"], "UTF-8 JSON"),
        ([b"{not json"], "UTF-8 JSON"),
        ([b"[1, 2]"], "JSON object"),
        (body_of({"v": 2, "id": "a", "op": "ping"}), "v=2"),
        (body_of({"v": 1, "op": "ping"}), "id="),
        (body_of({"v": 1, "id": "", "op": "ping"}), "id="),
        (body_of({"v": 1, "id": "a" * 200, "op": "ping"}), "at most 128"),
        (body_of({"v": 1, "id": "a", "op": "shutdown"}), "op='shutdown'"),
        (body_of({"v": 1, "id": "a", "op": "classify"}), "2 frames"),
        (body_of({"v": 1, "id": "a", "op": "classify", "top_k": 0}, b"img"), "top_k=0"),
        (body_of({"v": 1, "id": "a", "op": "classify", "top_k": "5"}, b"img"), "top_k='5'"),
        (body_of({"v": 1, "id": "a", "op": "classify", "top_k": True}, b"img"), "top_k=True"),
        (body_of({"v": 1, "id": "a", "op": "classify"}, b"img", b"more"), "3 frames"),
        (body_of({"v": 1, "id": "a", "op": "ping"}, b"extra"), "single header frame"),
    ],
)
def test_malformed_requests_say_what_is_wrong(body, fragment):
    with pytest.raises(BadRequest) as info:
        protocol.parse_request(body)
    assert fragment in info.value.message


def test_oversized_header_is_refused_before_parsing():
    header = json.dumps({"v": 1, "id": "a", "op": "ping", "pad": "x" * 5000}).encode()
    with pytest.raises(BadRequest, match="at most 4096 bytes"):
        protocol.parse_request([header])


def test_request_id_of_recovers_id_from_bad_requests_only_when_safe():
    assert protocol.request_id_of([b'{"id": "r1", "op": "bogus"}']) == "r1"
    assert protocol.request_id_of([b"garbage"]) is None
    assert protocol.request_id_of([b'{"id": 5}']) is None


def test_replies_round_trip_and_errors_become_typed_exceptions():
    ok = protocol.decode_reply(protocol.encode_reply("r", {"predictions": []}))
    assert protocol.raise_for_error(ok) == {"v": 1, "id": "r", "ok": True, "predictions": []}
    for error in (BadImage("nope"), Overloaded("busy")):
        reply = protocol.decode_reply(protocol.encode_error("r", error))
        with pytest.raises(type(error), match=error.message):
            protocol.raise_for_error(reply)


def test_unknown_error_code_still_raises_a_backend_error():
    reply = {"ok": False, "error": {"code": "martian", "message": "odd"}}
    with pytest.raises(BackendError) as info:
        protocol.raise_for_error(reply)
    assert info.value.code == "martian"


def test_garbage_reply_is_a_backend_error_not_a_request_error():
    with pytest.raises(BadReply) as info:
        protocol.decode_reply(b"\x00\x01")
    assert info.value.code == "bad_reply" and info.value.http_status == 502


# -- the typed classify reply and the ops table -------------------------------------------

REPLY = protocol.ClassifyReply(
    predictions=(protocol.Prediction(285, "Egyptian cat", 0.8), protocol.Prediction(282, "tiger cat", 0.1)),
    timings_ms=protocol.StageTimings(queue=0.5, decode=1.25, preprocess=0.75, inference=10.0, total=12.5),
    batch_size=3,
    model="efficientnet-lite0",
)


def test_stage_names_and_order_are_one_constant():
    assert protocol.STAGES == ("queue", "decode", "preprocess", "inference", "total")
    assert list(REPLY.timings_ms.to_wire()) == list(protocol.STAGES)


def test_classify_reply_round_trips_through_the_wire():
    frame = protocol.encode_reply("r1", REPLY.to_wire())
    decoded = protocol.decode_reply(frame)
    assert decoded["ok"] and decoded["id"] == "r1"
    assert protocol.ClassifyReply.from_wire(decoded) == REPLY
    with_roundtrip = protocol.ClassifyReply.from_wire({**decoded, "roundtrip_ms": 14.0})
    assert with_roundtrip.roundtrip_ms == 14.0 and with_roundtrip.top == REPLY.predictions[0]
    assert protocol.ClassifyReply.from_wire(with_roundtrip.to_wire()) == with_roundtrip


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"predictions": "cat"}, "predictions"),
        ({"predictions": [{"index": -1, "label": "x", "p": 0.5}]}, "index"),
        ({"predictions": [{"index": True, "label": "x", "p": 0.5}]}, "index"),
        ({"predictions": [{"index": 1, "label": 7, "p": 0.5}]}, "label"),
        ({"predictions": [{"index": 1, "label": "x", "p": 1.5}]}, "probability"),
        ({"timings_ms": {"queue": 1}}, "timings_ms.decode"),
        ({"timings_ms": [1, 2, 3]}, "timings_ms"),
        ({"timings_ms": {**REPLY.timings_ms.to_wire(), "total": -1}}, "timings_ms.total"),
        ({"batch_size": 0}, "batch_size"),
        ({"model": ""}, "model"),
        ({"roundtrip_ms": "fast"}, "roundtrip_ms"),
    ],
)
def test_classify_reply_from_wire_validates_with_bad_reply(change, fragment):
    with pytest.raises(BadReply, match=fragment) as info:
        protocol.ClassifyReply.from_wire({**REPLY.to_wire(), **change})
    assert "Received" in info.value.message
    with pytest.raises(BadReply):
        protocol.ClassifyReply.from_wire(["not", "an", "object"])


def test_every_op_has_one_entry_that_says_how_it_travels():
    assert protocol.OPS == tuple(protocol.OP_SPECS) == ("classify", "ping", "info")
    for name, spec in protocol.OP_SPECS.items():
        frames = protocol.encode_request("r", name, top_k=2, image=b"img" if spec.carries_image else None)
        request = protocol.parse_request(frames)
        assert request.op == name and (request.image is not None) == spec.carries_image
        assert ("top_k" in json.loads(frames[0])) == spec.carries_image
    assert protocol.OP_SPECS["ping"].answered_by_broker and not protocol.OP_SPECS["classify"].answered_by_broker


def test_a_workers_runtime_reaches_the_brokers_info_and_only_as_a_short_name() -> None:
    from model_backend.errors import BadRequest
    from model_backend.protocol import parse_worker_ready

    ready = parse_worker_ready(json.dumps({"capacity": 2, "runtime": "litert", "max_batch": 16}).encode())
    assert ready.static_info()["runtime"] == "litert"
    for bad in ("LiteRT<script>", "x" * 40, 3, ["litert"], ""):
        with pytest.raises(BadRequest, match="runtime"):
            parse_worker_ready(json.dumps({"capacity": 1, "runtime": bad}).encode())
