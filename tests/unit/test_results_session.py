"""Results survive, many images fit (issue 10, items 4 and 5): the session store, its bound, the drop's view,
the refusals' reasons and wording, and the served thumbnails. Plain functions, no browser."""

from __future__ import annotations

import json

import numpy as np
import pytest
from dash import html
from flask import Flask

from dashboard.classify import controller, session_results
from dashboard.classify.layout import refusals_alert
from dashboard.classify.thumbnails import install_thumbnail_route, thumbnail_url
from dashboard.classify.uploads import Outcome, Upload, uploads_from_browser
from dashboard.common.kept_uploads import keep_upload
from dashboard.settings import DashboardSettings, settings_from
from model_backend.errors import BackendUnavailable
from model_backend.protocol import ClassifyReply
from tests.support.helpers import data_url, png_bytes
from tests.support.helpers import text_of as component_text

PNG = b"\x89PNG\r\n\x1a\n"
REPLY = {"predictions": [{"index": 967, "label": "espresso", "p": 0.86}, {"index": 968, "label": "cup", "p": 0.06}],
         "timings_ms": {"queue": 0.4, "decode": 2.1, "preprocess": 0.6, "inference": 11.0, "total": 14.5},
         "batch_size": 2, "model": "efficientnet-lite0"}


def classified(name: str, p: float = 0.86) -> Outcome:
    reply = dict(REPLY, predictions=[{"index": 967, "label": "espresso", "p": p}])
    return Outcome(name, Upload(name, PNG + name.encode()).sha256, True, reply=ClassifyReply.from_wire(reply),
                   latency_ms=12.5)


def text_of(view) -> str:
    """What a user reads in a component or a list of them."""
    return component_text(html.Div(view))


def down(name: str) -> Outcome:
    return Outcome.failed(name, None, BackendUnavailable("No model backend is answering."))


def settings(limit: int = 50) -> DashboardSettings:
    return DashboardSettings(session_results=limit)


# --- the session store: accumulation, bound, failed drops, untrusted records ---------------------------------

def test_drops_accumulate_newest_first_and_the_picker_offers_every_image():
    stored, _ = controller.after_drop(settings(), None, [classified("a.png")])
    stored, _ = controller.after_drop(settings(), stored, [classified("b.png"), classified("c.png")])
    results = session_results.read_records(stored, 50)
    assert [(r.outcome.name, r.drop) for r in results] == [("b.png", 2), ("c.png", 2), ("a.png", 1)]
    view, options, value = controller.session_results_view(settings(), stored)
    assert [o["label"] for o in options] == ["b.png", "c.png", "a.png"] and value == options[0]["value"]
    text = text_of(view)
    assert "Earlier in this session (1)" in text and "keeps your last 50 results" in text


def test_a_drop_that_classified_nothing_changes_nothing_and_shows_its_errors():
    stored, _ = controller.after_drop(settings(), None, [classified("a.png")])
    kept, alert = controller.after_drop(settings(), stored, [down("late.png")])
    assert kept is None  # the callback leaves the store, the results and the picker as they were
    assert "late.png" in text_of(alert) and "backend down" in text_of(alert)
    kept, alert = controller.after_drop(settings(), stored, [down("late.png"), classified("b.png")])
    assert [r.outcome.name for r in session_results.read_records(kept, 50)] == ["b.png", "a.png"]
    assert "late.png" in text_of(alert)


def test_the_session_keeps_at_most_its_bound_and_drops_the_oldest():
    stored = None
    for drop in range(5):
        stored, _ = controller.after_drop(settings(limit=3), stored, [classified(f"{drop}-{i}.png") for i in range(2)])
    names = [r.outcome.name for r in session_results.read_records(stored, 3)]
    assert names == ["4-0.png", "4-1.png", "3-0.png"]
    assert "keeps your last 3 results" in text_of(controller.session_results_view(settings(limit=3), stored)[0])


def test_the_store_holds_small_records_and_no_image():
    stored, _ = controller.after_drop(settings(), None, [classified(f"{i}.png") for i in range(16)])
    encoded = json.dumps(stored)
    assert "data:image" not in encoded and "base64" not in encoded
    assert len(encoded) / 16 < 700  # about half a kilobyte per result: 50 of them stay far below sessionStorage's limit


@pytest.mark.parametrize("tamper", [
    lambda r: r.update(sha256="../../etc/passwd"),
    lambda r: r.update(sha256="A" * 64),
    lambda r: r.update(drop="1"),
    lambda r: r.update(latency_ms=-1),
    lambda r: r.update(latency_ms=float("inf")),
    lambda r: r["reply"].update(predictions=[{"index": 1, "label": "x", "p": 7}]),
    lambda r: r["reply"].update(batch_size=0),
    lambda r: r.pop("reply"),
])
def test_records_from_the_browser_are_validated_and_bad_ones_dropped(tamper):
    stored, _ = controller.after_drop(settings(), None, [classified("good.png"), classified("bad.png")])
    tamper(stored["results"][1])
    assert [r.outcome.name for r in session_results.read_records(stored, 50)] == ["good.png"]


def test_names_from_the_browser_are_cleaned_and_other_shapes_are_empty():
    stored, _ = controller.after_drop(settings(), None, [classified("a.png")])
    stored["results"][0]["name"] = "evil\x1b[31m\u202e.png" + "x" * 1000
    [result] = session_results.read_records(stored, 50)
    assert "\x1b" not in result.outcome.name and "\u202e" not in result.outcome.name and len(result.outcome.name) <= 255
    for junk in (None, [], "text", {"version": 99, "results": stored["results"]}, {"version": 1, "results": {}}):
        assert session_results.read_records(junk, 50) == []
    assert controller.session_results_view(settings(), None) == ([], [], None)


# --- the drop's view: one full card, or compact tiles that open to theirs ------------------------------------

def test_one_image_shows_its_full_card_several_show_tiles_that_open_to_theirs():
    [card] = controller.results_view([classified("one.png")])[0]
    assert card.className.startswith("result-card")
    tiles = controller.results_view([classified(f"{i}.png") for i in range(16)] + [down("x.png")])[0]
    assert len(tiles) == 16 and all(tile.className == "result-tile" for tile in tiles)
    summary, body = tiles[0].children
    assert "0.png" in text_of(summary) and "espresso" in text_of(summary) and "86%" in text_of(summary)
    assert "12.5 ms" in text_of(summary)
    assert "Loading the full result" in text_of(body) and "stage" not in text_of(body)  # drawn when it opens
    assert summary.id["sha256"] == body.id["sha256"] and summary.id["key"] == body.id["key"]


def test_an_opened_tile_draws_the_full_card_of_its_result_from_the_store():
    stored, _ = controller.after_drop(settings(), None, [classified("a.png"), classified("b.png", p=0.1)])
    sha = session_results.read_records(stored, 50)[1].outcome.sha256
    card = controller.tile_card_view(settings(), stored, sha, "1")
    assert card.className.startswith("result-card result-unsure") and "b.png" in text_of(card)
    assert "backend total" in text_of(card) and "result-tile-1-queue" in text_of(card)
    assert "no longer among this tab's results" in text_of(controller.tile_card_view(settings(), stored, "ab" * 32, "1"))
    unsure = controller.results_view([classified("a.png", p=0.1), classified("b.png")], unsure_below=0.3)[0]
    assert [tile.className for tile in unsure] == ["result-tile tile-unsure", "result-tile"]


def test_a_multi_image_drop_says_how_many_and_its_median_round_trip():
    stored, _ = controller.after_drop(settings(), None, [classified(f"{i}.png") for i in range(3)])
    text = text_of(controller.session_results_view(settings(), stored)[0])
    assert "3 images in this drop, median round trip 12.5 ms" in text


# --- refusals: each file its own first reason, said once -----------------------------------------------------

def test_each_refused_file_gets_its_own_first_reason_size_and_format_before_count():
    images = [data_url(PNG + bytes([i])) for i in range(18)]
    big = data_url(PNG + b"x" * 5000)
    text = data_url(b"just text", "text/plain")
    contents = images[:5] + [big] + images[5:10] + [text] + images[10:] + ["not a data url"]
    names = [f"{i}.png" for i in range(5)] + ["big.png"] + [f"{i}.png" for i in range(5, 10)] + ["notes.txt"] + \
        [f"{i}.png" for i in range(10, 18)] + ["broken.png"]
    uploads, refused = uploads_from_browser(contents, names, max_files=16, max_bytes=4096)
    assert [u.name for u in uploads] == [f"{i}.png" for i in range(16)]
    reasons = {o.name: (o.error_code, o.error_message) for o in refused}
    assert reasons["big.png"][0] == "too_large" and reasons["notes.txt"][0] == "bad_image"
    assert reasons["broken.png"][0] == "bad_request" and "data URL" in reasons["broken.png"][1]
    assert reasons["16.png"] == ("bad_request", "only 16 images are sent per drop and this was file 19; "
                                                "drop it again in a smaller batch.")
    assert reasons["17.png"][1].endswith("this was file 20; drop it again in a smaller batch.")


def test_the_refusal_says_not_sent_once():
    _, refused = uploads_from_browser([data_url(PNG + b"a"), data_url(PNG + b"b")], ["a.png", "b.png"], max_files=1)
    items = refusals_alert(refused).children[1].children
    lines = [text_of(item) for item in items]
    assert len(lines) == 1 and "b.png" in lines[0] and lines[0].lower().count("not sent") == 1


def test_the_bound_is_a_setting_with_a_flag_and_an_environment_variable():
    assert DashboardSettings().session_results == 50
    assert settings_from({}, {"WARMSERVE_DASH_SESSION_RESULTS": "20"}).session_results == 20
    assert settings_from({"session_results": 7}, {"WARMSERVE_DASH_SESSION_RESULTS": "20"}).session_results == 7
    with pytest.raises(ValueError, match="session_results"):
        DashboardSettings(session_results=0)


# --- thumbnails: served from the kept uploads, by sha256 only --------------------------------------------------

def test_thumbnails_are_served_from_kept_uploads_and_nothing_else(tmp_path):
    server = Flask("t")
    install_thumbnail_route(server, tmp_path / "uploads")
    image = Upload("grey.png", png_bytes(np.full((300, 200, 3), 128, dtype=np.uint8)))
    keep_upload(tmp_path / "uploads", image)
    (tmp_path / "secret.img").write_bytes(image.data)
    client = server.test_client()
    reply = client.get(thumbnail_url(image.sha256))
    assert reply.status_code == 200 and reply.mimetype == "image/jpeg" and reply.data[:3] == b"\xff\xd8\xff"
    assert "max-age" in reply.headers["Cache-Control"]
    for name in ("0" * 64, "../secret", "A" * 64, image.sha256[:63]):
        assert client.get(f"/thumbnails/{name}.jpg").status_code == 404


def test_the_monolith_on_a_result_whose_image_is_gone_says_so(tmp_path):
    from dashboard.history.store import HistoryStore
    from dashboard.monolith.controller import run_monolith_view

    settings = DashboardSettings(data_dir=tmp_path)
    panel = run_monolith_view(settings, HistoryStore(settings.db_path), "ab" * 32,
                              runner=lambda *a, **k: pytest.fail("ran the monolith"))
    assert "no longer kept on the server" in text_of(panel) and "Drop it again" in text_of(panel)
