"""The in-flight registry the server and the broker share: a retry joins the work under way, nothing else does."""

from __future__ import annotations

from dataclasses import dataclass, field

from model_backend.inflight import InFlight
from model_backend.protocol import Request


@dataclass
class Work:
    request: Request
    envelopes: list[list[bytes]] = field(default_factory=list)


def test_a_retry_with_the_same_id_and_content_joins_the_entry_in_flight():
    inflight: InFlight[int, Work] = InFlight(max_envelopes=3)
    request = Request(id="abc", op="classify", top_k=5, image=b"img")
    work = Work(request, [[b"first"]])
    inflight.add(1, work)
    assert inflight.same(Request(id="abc", op="classify", top_k=5, image=b"img")) is work
    assert inflight.same(Request(id="abc", op="classify", top_k=5, image=b"other")) is None  # same id, other content
    assert inflight.same(Request(id="xyz", op="classify", top_k=5, image=b"img")) is None
    for name in (b"second", b"second", b"third", b"fourth"):
        inflight.attach(work, [name])
    assert work.envelopes == [[b"second"], [b"third"], [b"fourth"]]  # no duplicates; the oldest gives up its place


def test_popping_forgets_the_request_id_only_for_its_own_entry():
    inflight: InFlight[int, Work] = InFlight()
    request = Request(id="abc", op="classify", top_k=5, image=b"img")
    inflight.add(1, Work(request))
    inflight.add(2, Work(request))  # the same id again (its first entry keeps the id)
    assert len(inflight) == 2 and inflight.same(request) is inflight.get(1)
    assert inflight.pop(2) is not None and inflight.same(request) is inflight.get(1)
    assert inflight.pop(1) is not None and inflight.same(request) is None
    assert inflight.pop(1) is None and not inflight
