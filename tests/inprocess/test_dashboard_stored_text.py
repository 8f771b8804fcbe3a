"""Stored text cannot hurt: names cleaned and capped on every way in, long strings capped, CSV formulas neutralised,
Plotly hover text escaped (and Dash text not escaped twice), the history bounded by its retention."""

from __future__ import annotations

import base64
import csv
import io
import json
import time
import unicodedata
from datetime import timezone

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from dashboard.app import create_app
from dashboard.classify import controller as classify_controller
from dashboard.classify.figures import top_k_figure
from dashboard.classify.layout import result_card
from dashboard.classify.uploads import Outcome, Upload
from dashboard.common.sanitize import NAME_MAX, clean_name, clean_text, csv_cell, plotly_text
from dashboard.history import controller as history_controller
from dashboard.history import store as history_store
from dashboard.history.figures import time_figure
from dashboard.history import schema
from dashboard.history.layout import history_table
from dashboard.history.records import MONOLITH, SERVICE, error_record, service_record
from dashboard.history.store import HistoryStore
from model_backend.protocol import ClassifyReply
from tests.support.dash import StubClient
from tests.support.standin import shade_png

HUGE = "x" * 400_000
#: names of the same classes as the issue's: huge, control characters, bidi override, empty, nothing printable, ...
NAMES = {
    "400 KB": HUGE + ".png",
    "400 KB of one line breaks": "\n" * 400_000 + "cat.png",
    "control characters": "a\x00b\x07c\x1b[31md\x7f\x85e.png",
    "bidi override": "invoice\u202egnp.exe",
    "zero-width and isolates": "\u200bcat\u2066\u2069\ufeff.png",
    "empty": "",
    "nothing printable": "\x00\x01\u202e\t\r\n",
    "whitespace runs": "  my    holiday \t photo .png  ",
    "lone surrogate": "cat\ud800.png",
}
REPLY = {"ok": True, "predictions": [{"index": 285, "label": "Egyptian cat", "p": 0.8}], "model": "stub",
         "timings_ms": {"queue": 0.1, "decode": 0.1, "preprocess": 0.1, "inference": 1.0, "total": 1.3}, "batch_size": 1}


@pytest.fixture
def history_db(tmp_path):
    """A SQLite file here; tests/process/test_history_db_backends.py runs the store tests below on PostgreSQL too."""
    return tmp_path / "h.sqlite3"


def insert_raw(store: HistoryStore, rows: list[dict]) -> None:
    """Rows straight into the table, uncleaned (as stored before the caps), on either database."""
    with store.engine.begin() as conn:
        conn.execute(sa.insert(schema.requests), rows)


def is_clean(name: str) -> bool:
    return (0 < len(name) <= NAME_MAX and not any(unicodedata.category(c)[0] == "C" for c in name)
            and name == " ".join(name.split()))


def text_of(component) -> str:
    return json.dumps(component.to_plotly_json(), default=lambda o: o.to_plotly_json(), ensure_ascii=False)


# --- names ---------------------------------------------------------------------------------------------


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(st.characters(exclude_categories=()), max_size=700))
def test_any_name_comes_out_clean_capped_never_empty_and_stays_so(raw):
    name = clean_name(raw, "ab" * 32)
    assert is_clean(name)
    assert clean_name(name) == name  # cleaning is idempotent: what is stored is what is shown
    if is_clean(raw):
        assert name == raw  # an ordinary name is left alone


@pytest.mark.parametrize("raw", NAMES.values(), ids=NAMES.keys())
def test_the_store_cleans_names_as_its_last_line_of_defence(history_db, raw):
    store = HistoryStore(history_db)
    store.add(service_record(raw, "ab" * 32, REPLY, 1.0))
    [row] = store.recent()
    assert is_clean(row["image"]) and row["image"] == clean_name(raw, "ab" * 32)


def test_long_names_keep_their_extension_and_empty_ones_fall_back_to_the_sha(tmp_path):
    assert clean_name(NAMES["400 KB"]).endswith("….png") and len(clean_name(NAMES["400 KB"])) == NAME_MAX
    assert clean_name(NAMES["bidi override"]) == "invoicegnp.exe"
    assert clean_name(NAMES["whitespace runs"]) == "my holiday photo .png"
    assert clean_name("", "0123456789abcdef" * 4) == "0123456789ab"
    assert clean_name("\x00\u202e", None) == "image"


@pytest.mark.parametrize("raw", NAMES.values(), ids=NAMES.keys())
def test_dropped_files_are_stored_and_shown_under_clean_names(dash_settings, raw):
    settings = dash_settings()
    store = HistoryStore(settings.db_path)
    url = "data:image/png;base64," + base64.b64encode(shade_png(3)).decode()
    outcomes = classify_controller.classify_drop(settings, StubClient(), store, [url, "data:text/plain;base64,!!"], [raw, raw])
    names = [o.name for o in outcomes]
    assert all(is_clean(n) for n in names), names
    assert sorted(r["image"] for r in store.recent()) == sorted(names)
    cards, alert, options, _ = classify_controller.results_view(outcomes)
    assert all(is_clean(o["label"]) for o in options)
    assert len(text_of(alert)) < 5000 and len(text_of(cards[0])) < 50_000


@pytest.fixture
def api(dash_settings):
    apps = []

    def make():
        app = create_app(dash_settings(), StubClient())
        apps.append(app)
        return app.server.test_client(), app.server.extensions["warmserve"]["store"]

    yield make
    from dashboard.app import stop_app

    for app in apps:
        stop_app(app)


API_NAMES = {k: v for k, v in NAMES.items() if k not in ("lone surrogate", "400 KB of one line breaks")}


@pytest.mark.parametrize("way", ["query", "header", "multipart"])
@pytest.mark.parametrize("raw", API_NAMES.values(), ids=API_NAMES.keys())
def test_api_names_are_stored_and_answered_clean(api, way, raw):
    http, store = api()
    image = shade_png(5)
    if way != "query":  # a header line (X-Image-Name, a part's Content-Disposition) cannot carry line breaks
        raw = raw.replace("\r", "").replace("\n", "")
    if way == "query":
        response = http.post("/api/v1/classify", query_string={"name": raw}, data=image)
    elif way == "header":
        latin1 = raw.encode("utf-8").decode("latin-1")  # how a header carries any bytes
        response = http.post("/api/v1/classify", headers={"X-Image-Name": latin1}, data=image)
    else:
        response = http.post("/api/v1/classify", data={"image": (io.BytesIO(image), raw)}, content_type="multipart/form-data")
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    answered = response.get_json()["image"]
    [row] = store.recent()
    assert is_clean(answered) and row["image"] == answered


def test_a_history_of_huge_names_stays_a_small_refresh(history_db):
    store = HistoryStore(history_db)
    for i in range(200):
        store.add(service_record(f"{i}-{HUGE}.png", None, REPLY, float(i + 1)))
    # rows written before names were capped, straight into the table, are drawn small too
    insert_raw(store, [{"ts": time.time(), "kind": SERVICE, "image": HUGE, "ok": 1, "latency_ms": 5.0,
                        "error_message": HUGE}] * 20)
    view = history_controller.history_view(store)
    size = sum(len(json.dumps(f.to_plotly_json(), default=str)) for f in (view.time_figure, view.distribution_figure)) \
        + len(text_of(view.summary)) + len(text_of(view.table))
    assert size < 200_000, size  # was tens of megabytes: every name went out whole, every refresh
    assert all(len(r["image"]) <= NAME_MAX for r in store.recent(220, SERVICE))  # old rows come out capped too


def test_the_history_api_answers_old_rows_with_huge_names_small(api):
    http, store = api()
    insert_raw(store, [{"ts": time.time(), "kind": SERVICE, "image": HUGE + "\u202e.png", "ok": 1, "latency_ms": 5.0,
                        "error_message": HUGE}] * 20)  # rows written before names were capped
    response = http.get("/api/v1/history?limit=1000")
    assert response.status_code == 200
    assert len(response.get_data()) < 200_000, len(response.get_data())  # was 20 x 2 x 400 KB
    assert all(is_clean(r["image"]) and len(r["image"]) <= NAME_MAX for r in response.get_json()["records"])


def test_other_stored_strings_are_capped_and_cleaned(history_db):
    store = HistoryStore(history_db)
    store.add(error_record(MONOLITH, "cat.png", None, "internal" * 1000, "Traceback\x00\n" + "x" * 100_000,
                           model="m" * 10_000))
    store.add(service_record("cat.png", None, {**REPLY, "model": {"not": "a string"},
                                               "predictions": [{"index": 1, "label": "L\u202e" * 10_000, "p": 0.5}]}, 1.0))
    rows = store.recent()
    for row in rows:
        for column in ("error_code", "error_message", "model", "top1_label", "source", "image"):
            value = row[column]
            assert value is None or (len(value) <= 1000 and clean_text(value, 1000) == value), (column, value[:80])
    assert rows[1]["error_message"].startswith("Traceback x") and len(rows[1]["error_message"]) <= 1000
    assert rows[0]["model"] == "{'not': 'a string'}"


# --- CSV export ------------------------------------------------------------------------------------------

FORMULAS = ['=HYPERLINK("http://evil.example","click")', "+1+1", "-1+1", "@SUM(A1:A2)", "\t=1+1", "\r=1+1",
            " =1+1", "=cmd|' /C calc'!A0", "\uff1d1+1", "\n=1+1"]
TEXT_COLUMNS = ("kind", "source", "image", "sha256", "model", "error_code", "error_message", "top1_label")


def dangerous(cell: str) -> bool:
    """A cell Excel, LibreOffice or Sheets would run as a formula."""
    return bool(cell) and (cell[0] in "=+-@\t\r\n\uff1d\uff0b\uff0d\uff20"
                           or cell.lstrip(" \t\r\n\x0b\x0c")[:1] in ("=", "+", "-", "@"))


@pytest.mark.parametrize("payload", FORMULAS, ids=repr)
def test_csv_export_neutralises_formulas_in_every_text_column(history_db, payload):
    store = HistoryStore(history_db)
    store.add(error_record(SERVICE, payload, payload, payload, payload, 1.0, source=payload, model=payload))
    store.add(service_record(payload, None, {**REPLY, "model": payload,
                                             "predictions": [{"index": 1, "label": payload, "p": 0.5}]}, 2.0))
    insert_raw(store, [{"ts": time.time(), "kind": SERVICE, "ok": 0,  # an old row, stored before any cleaning
                        **dict.fromkeys(("source", "image", "sha256", "model", "error_code", "error_message", "top1_label"),
                                        payload)}])
    rows = list(csv.DictReader(io.StringIO(store.to_csv())))
    assert len(rows) == 3
    for row in rows:
        for column in TEXT_COLUMNS:
            assert not dangerous(row[column]), (column, row[column])
    assert rows[2]["image"] == "'" + payload and rows[2]["error_message"] == "'" + payload  # neutralised, not lost
    assert rows[1]["latency_ms"] == "2.0" and rows[0]["ok"] == "0"  # numbers stay numbers


@hsettings(max_examples=200, deadline=None)
@given(st.sampled_from("=+-@\t\r\n"), st.text(max_size=40))
def test_no_text_cell_leaves_the_export_as_a_formula(first, rest):
    assert not dangerous(csv_cell(first + rest))
    assert csv_cell(first + rest).endswith(first + rest)


# --- Plotly hover text -------------------------------------------------------------------------------------

XSS = "<img src=x onerror=alert(1)>"


def test_names_reach_the_history_figure_escaped(tmp_path):
    rows = [{"ts": time.time(), "latency_ms": 12.0, "image": XSS, "top1_label": "<b>bold</b> & co", "batch_size": 1,
             "grp": 0},
            {"ts": time.time(), "latency_ms": 3000.0, "image": '<a href="javascript:alert(1)">x</a>', "top1_label": "",
             "batch_size": 1, "grp": 2}]
    figure = time_figure(rows, None, (time.time() - 5, time.time() + 5), timezone.utc)
    service, monolith = figure.data[0], figure.data[1]
    assert service.customdata[0][0] == "&lt;img src=x onerror=alert(1)&gt;"
    assert service.customdata[0][1] == "&lt;b&gt;bold&lt;/b&gt; &amp; co"
    assert monolith.customdata[0][0].startswith("&lt;a href=")
    drawn = json.dumps([trace.customdata.tolist() if hasattr(trace.customdata, "tolist") else trace.customdata
                        for trace in figure.data], default=str)
    assert "<" not in drawn and ">" not in drawn
    assert service.hovertemplate.count("<br>") == 3 and service.hovertemplate.startswith("<b>")  # the template's own markup is untouched


def test_class_labels_reach_the_bars_escaped():
    figure = top_k_figure([{"index": 1, "label": XSS, "p": 0.6}, {"index": 2, "label": "<b>x</b>", "p": 0.3}])
    bar = figure.data[0]
    assert all("<" not in label and ">" not in label for label in bar.y)
    assert bar.customdata[0][1] == "&lt;img src=x onerror=alert(1)&gt;" and bar.customdata[1][1] == "&lt;b&gt;x&lt;/b&gt;"


@hsettings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_plotly_text_never_carries_markup(raw):
    shown = plotly_text(raw)
    assert "<" not in shown and ">" not in shown
    assert shown.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "").count("&") == 0


def test_dash_components_show_the_name_as_text_not_escaped_twice():
    row = {"ts": time.time(), "kind": SERVICE, "image": XSS, "latency_ms": 3.0, "batch_size": 1, "ok": 1,
           "top1_label": "Egyptian cat", "top1_p": 0.8}
    assert XSS in text_of(history_table([row])) and "&lt;" not in text_of(history_table([row]))
    card = result_card(Outcome(XSS, "ab" * 32, True, reply=ClassifyReply.from_wire(REPLY), latency_ms=2.0))
    assert XSS in text_of(card)


# --- retention -----------------------------------------------------------------------------------------------


def test_inserting_beyond_max_rows_keeps_the_newest(history_db, monkeypatch):
    monkeypatch.setattr(history_store, "PRUNE_EVERY", 10)
    store = HistoryStore(history_db, max_rows=50)
    peak = 0
    for i in range(125):
        store.add(service_record(f"img-{i}", None, REPLY, 1.0))
        peak = max(peak, store.signature()[0])
    assert peak <= 50 + 10  # checked every PRUNE_EVERY inserts, so it never runs far over
    reopened = HistoryStore(history_db, max_rows=50)  # and when a store opens
    assert [r["image"] for r in reopened.recent(1000)] == [f"img-{i}" for i in range(124, 74, -1)]


def test_rows_older_than_the_age_limit_go(history_db):
    day = 24 * 3600
    now = time.time()
    store = HistoryStore(history_db, max_age_s=None)
    for age_days, name in ((400, "old"), (366, "just too old"), (364, "recent"), (0, "now")):
        store.add({**service_record(name, None, REPLY, 1.0), "ts": now - age_days * day})
        store.add({**error_record(MONOLITH, name, None, "timeout", "slow"), "ts": now - age_days * day})
    assert store.signature()[0] == 8  # no age limit: nothing went
    kept = HistoryStore(history_db, max_age_s=365 * day)
    assert sorted({r["image"] for r in kept.recent()}) == ["now", "recent"] and kept.signature()[0] == 4


def test_retention_comes_from_the_settings(dash_settings, tmp_path):
    settings = dash_settings(history_max_rows=3, history_max_age_days=0)
    store = HistoryStore.from_settings(settings)
    assert store.max_rows == 3 and store.max_age_s is None
    for i in range(5):
        store.add({**service_record(f"img-{i}", None, REPLY, 1.0), "ts": 1.0})  # 1970: no age limit keeps them
    assert [r["image"] for r in HistoryStore.from_settings(settings).recent()] == ["img-4", "img-3", "img-2"]
    defaults = dash_settings()
    assert (defaults.history_max_rows, defaults.history_max_age_days) == (100_000, 365.0)
    from dashboard.settings import SettingsError

    for bad in ({"history_max_rows": 0}, {"history_max_age_days": -1}, {"monolith_concurrency": 0},
                {"monolith_queue": -1}):
        with pytest.raises(SettingsError, match=next(iter(bad))):
            dash_settings(**bad)


def test_uploads_with_the_same_name_get_the_same_clean_name():
    assert Upload("a\u202eb.png", b"1").name == Upload("ab.png", b"2").name == "ab.png"
