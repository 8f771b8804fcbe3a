"""The history's charts and store from 1 to 100,000 requests: 1-2-5 ticks, no line across an idle gap,
aggregation past RAW_MAX, a bounded figure size, exact percentiles from the indexes, like-with-like groups."""

from __future__ import annotations

import json
import math
import sqlite3
from datetime import timezone

import numpy as np
import pytest
import sqlalchemy as sa

from dashboard.common.figures import local_epoch_ms, log_ticks
from dashboard.common.formatting import viewer_zone
from dashboard.history import controller
from dashboard.history.figures import MAX_TICKS, STRIP_MAX
from dashboard.history.stats import ALONE, LOADED, MONOLITH_GROUP, bucket_percentiles, view_start
from dashboard.history.store import ROW_COLUMNS, HistoryStore, _INSERT_ALL

NOW = 1_790_000_000.0


def seed(store: HistoryStore, n: int, *, start: float = NOW - 3600, span: float = 3600, rng_seed: int = 0) -> dict:
    """``n`` successful rows straight into the table, a third each alone / under load, 1 % monolith; the values."""
    rng = np.random.default_rng(rng_seed)
    ts = np.sort(start + rng.uniform(0, span, n)) if n > 1 else np.array([start])
    rows, values = [], {ALONE: [], LOADED: [], MONOLITH_GROUP: []}
    for i in range(n):
        group = MONOLITH_GROUP if i % 100 == 99 else (ALONE if i % 2 else LOADED)
        latency = float(rng.lognormal(math.log({ALONE: 8, LOADED: 40, MONOLITH_GROUP: 4000}[group]), 0.3))
        row = dict.fromkeys(ROW_COLUMNS)
        row.update(ts=float(ts[i]), kind="monolith" if group == MONOLITH_GROUP else "service", ok=1, latency_ms=latency,
                   batch_size=1 if group != LOADED else int(rng.integers(2, 17)), image=f"img{i}.png",
                   queue_ms=None if group == MONOLITH_GROUP else (0.2 if group == ALONE else 3.0))
        rows.append(row)
        values[group].append(latency)
    with store.engine.begin() as conn:  # SQLite or PostgreSQL alike
        conn.execute(sa.text(_INSERT_ALL), rows)
    return values


@pytest.fixture
def history_db(tmp_path):
    """A SQLite file here (the pure unit layer); tests/process/test_history_db_backends.py runs the store tests
    below on PostgreSQL too."""
    return tmp_path / "h.sqlite3"


def figure_bytes(fig) -> int:
    return len(fig.to_json())


@pytest.mark.parametrize("low_ms, high_ms", [(5, 9), (3, 5000), (0.4, 60_000), (8, 8)])
def test_latency_ticks_are_1_2_5_inside_the_range_and_labelled_in_ms_or_s(low_ms, high_ms):
    axis = [math.log10(low_ms) - 0.5, math.log10(high_ms) + 0.5]
    values, text = log_ticks(axis)
    assert 2 <= len(values) <= 12
    assert all(axis[0] <= math.log10(v) <= axis[1] for v in values)
    assert all(float(f"{v:.0e}".split("e")[0]) in (1, 2, 3, 5) for v in values)
    assert all(t.endswith((" ms", " s")) for t in text)
    if high_ms < 100:
        assert set(values) >= {5, 10}  # a few points still get several labelled ticks, not one "100"


def test_an_idle_gap_moves_the_view_to_the_recent_burst():
    times, counts = np.array([0.0, 10.0, 20.0, 10_000.0, 10_001.0, 10_002.0]), np.array([5, 5, 5, 50, 50, 50])
    assert view_start(times, weights=counts) == 10_000.0
    assert view_start(np.array([0.0, 30.0, 61.0]), weights=np.array([50, 50, 50])) == 0.0  # no gap worth hiding
    assert view_start(np.array([5.0])) == 5.0 and view_start(np.array([])) is None


def test_bucket_percentiles_match_numpy_and_skip_empty_buckets():
    rng = np.random.default_rng(1)
    ts = np.concatenate([rng.uniform(0, 60, 500), rng.uniform(600, 660, 500)])
    lat = rng.lognormal(3, 0.5, 1000)
    b = bucket_percentiles(ts, lat, 0.0, 60.0)
    assert b.start.tolist() == [0.0, 600.0]  # the nine empty minutes between are not there
    first = lat[ts < 60]
    assert b.p50[0] == pytest.approx(np.percentile(first, 50)) and b.p95[0] == pytest.approx(np.percentile(first, 95))
    assert b.count.tolist() == [500, 500] and b.max[1] == pytest.approx(lat[ts >= 600].max())


@pytest.mark.parametrize("n", [1, 4, 260])
def test_few_requests_are_drawn_one_by_one_without_lines(history_db, n):
    store = HistoryStore(history_db)
    seed(store, n, span=120)
    view = controller.history_view(store, "UTC")
    points = [t for t in view.time_figure.data]
    assert sum(len(t.x) for t in points) == n
    assert all(t.mode == "markers" and t.cliponaxis is False for t in points)  # no line can join across a gap
    start, end = view.time_figure.layout.xaxis.range
    assert end - start >= 10_000  # ms: one request still gets a readable stretch of time
    assert len(view.time_figure.layout.yaxis.tickvals) >= 2 and len(view.distribution_figure.layout.yaxis.tickvals) >= 2
    assert "one request" in view.time_note


def test_the_time_view_starts_after_an_idle_gap(history_db):
    store = HistoryStore(history_db)
    seed(store, 40, start=NOW - 86_400, span=10)  # yesterday
    seed(store, 200, start=NOW, span=30, rng_seed=2)  # now: most of the requests
    view = controller.history_view(store, "UTC")
    assert sum(len(t.x) for t in view.time_figure.data) == 200
    assert "40 earlier" in view.time_note
    assert sum(int(g["count"]) for g in store.group_percentiles().values()) == 240  # the distribution keeps them


def test_the_view_never_starts_after_a_gap_that_most_requests_come_before():
    hour = 3600.0
    # the rule applies to all the requests, not to what is left after an earlier cut
    day_before, burst, two_hours_later = 0.0, 24 * hour, 26 * hour  # 40, 20 and 30 requests: 90 in all
    times, counts = np.array([day_before, burst, two_hours_later]), np.array([40, 20, 30])
    assert view_start(times, weights=counts) == burst  # 50 of 90 after the idle day; 30 of 90 is not enough
    assert view_start(np.array([0.0, 5 * hour, 5.9 * hour, 6 * hour])) == 0.0  # few requests: all of them


def _drawn(view) -> int:
    return sum(len([x for x in t.x if x is not None]) for t in view.time_figure.data if t.mode == "markers")


def test_four_requests_over_six_hours_are_all_in_the_time_view(history_db):
    store = HistoryStore(history_db)
    for offset_h in (0, 5, 5.9, 6):  # the size script's case: it showed 1 and "3 earlier ... distribution only"
        seed(store, 1, start=NOW - 6 * 3600 + offset_h * 3600, rng_seed=int(offset_h * 10))
    view = controller.history_view(store, "UTC")
    assert _drawn(view) == 4 and "earlier" not in view.time_note
    breaks = view.time_figure.layout.xaxis.rangebreaks
    assert len(breaks) == 3  # the idle hours are cut out of the axis, so the four dots do not sit on the edges
    assert "idle" in view.time_note


def test_three_bursts_a_day_apart_are_all_shown_with_the_idle_days_cut_out(history_db):
    store = HistoryStore(history_db)
    for day, n in enumerate((90, 85, 85)):
        seed(store, n, start=NOW - (2 - day) * 86_400, span=600, rng_seed=day)
    view = controller.history_view(store, "UTC")
    assert _drawn(view) == 260 and "earlier" not in view.time_note
    assert len(view.time_figure.layout.xaxis.rangebreaks) == 2


def test_five_thousand_steady_requests_are_all_in_the_time_view(history_db):
    store = HistoryStore(history_db)
    seed(store, 5000, start=NOW - 3600, span=3600)
    view = controller.history_view(store, "UTC")
    assert view.time_note.startswith("Showing 5,000 requests") and "earlier" not in view.time_note
    assert not view.time_figure.layout.xaxis.rangebreaks


def test_many_requests_are_aggregated_broken_at_gaps_and_stay_small(history_db):
    store = HistoryStore(history_db)
    seed(store, 60_000, start=NOW - 7200, span=1800)
    seed(store, 40_000, start=NOW - 1800, span=1800, rng_seed=3)
    with store.engine.begin() as conn:  # an idle half hour inside the view
        conn.execute(sa.text("DELETE FROM requests WHERE ts BETWEEN :a AND :b"), {"a": NOW - 4000, "b": NOW - 2200})
    view = controller.history_view(store, "Europe/Berlin")
    traces = view.time_figure.data
    assert len(traces) == 6 and sum(t.name.endswith(" p95") for t in traces) == 3
    assert view.time_figure.layout.showlegend is False  # the HTML key above the charts wraps on a phone instead
    assert sum(len(t.x) for t in traces) < 2_000  # never 100,000 points
    assert all(None in t.y for t in traces if "monolith" not in t.name)  # the line breaks at empty buckets
    assert all(t.connectgaps is False for t in traces)
    assert figure_bytes(view.time_figure) < 60_000 and figure_bytes(view.distribution_figure) < 30_000
    assert "p95 (dotted) per" in view.time_note
    for fig in (view.time_figure, view.distribution_figure):  # 1-2-5 thinned to what fits a 360 px chart
        assert 2 <= len(fig.layout.yaxis.tickvals) <= MAX_TICKS
    assert not any("p50" in label for label in view.distribution_figure.layout.xaxis.ticktext)  # in the cards
    assert not any(t.type == "scatter" and t.x is not None and len(t.x) > STRIP_MAX
                   for t in view.distribution_figure.data)


def test_store_percentiles_are_exact_with_100000_rows(history_db):
    store = HistoryStore(history_db)
    values = seed(store, 100_000, span=86_400)
    groups = store.group_percentiles()
    for group, expected in values.items():
        assert groups[group]["count"] == len(expected)
        for p in (5, 25, 50, 75, 95):
            assert groups[group][f"p{p}"] == pytest.approx(np.percentile(expected, p), rel=1e-12)
    summary = store.summary(groups)
    assert summary["speedup"] == pytest.approx(np.median(values[MONOLITH_GROUP]) / np.median(values[ALONE]))
    sample = store.latency_arrays(0.0, max_rows=20_000)
    assert len(sample) <= 20_000 and sample.sample_step == 5


def test_alone_means_batch_1_and_under_1_ms_queued(history_db):
    store = HistoryStore(history_db)
    for batch, queue_ms, latency in ((1, 0.3, 10.0), (1, 2.0, 50.0), (4, 0.1, 60.0), (1, None, 70.0)):
        store.add({"kind": "service", "ok": True, "latency_ms": latency, "batch_size": batch, "queue_ms": queue_ms})
    groups = store.group_percentiles()
    assert groups[ALONE]["count"] == 1 and groups[ALONE]["p50"] == 10.0
    assert groups[LOADED]["count"] == 3  # queued 2 ms, shared a batch of 4, or no queue time reported


def test_an_existing_database_gains_the_indexes_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:  # the schema before the history charts' indexes
        conn.execute("CREATE TABLE requests (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, kind TEXT NOT NULL,"
                     " source TEXT, image TEXT, sha256 TEXT, model TEXT, ok INTEGER NOT NULL, error_code TEXT,"
                     " error_message TEXT, latency_ms REAL, queue_ms REAL, decode_ms REAL, preprocess_ms REAL,"
                     " inference_ms REAL, backend_total_ms REAL, import_ms REAL, model_load_ms REAL, batch_size INTEGER,"
                     " top1_index INTEGER, top1_label TEXT, top1_p REAL)")
        conn.execute("INSERT INTO requests (ts, kind, ok, latency_ms, batch_size, queue_ms) VALUES (?, 'service', 1, 9.0, 1, 0.1)",
                     (NOW,))
    store = HistoryStore(path, max_age_s=None)
    with sqlite3.connect(path) as conn:
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"requests_ok_ts", "requests_group_latency", "requests_kind_ok_latency"} <= indexes
    assert store.group_percentiles()[ALONE]["p50"] == 9.0 and len(store.recent()) == 1


def test_times_are_drawn_in_the_viewers_zone_and_a_forged_zone_falls_back_to_utc():
    winter, summer = 1_767_225_600.0, 1_782_864_000.0  # 2026-01-01 and 2026-07-01, 00:00 UTC
    shifted = local_epoch_ms([winter, summer], viewer_zone("Europe/Berlin"))
    assert (shifted - np.array([winter, summer]) * 1000).tolist() == [3_600_000, 7_200_000]
    for forged in ("../../etc/passwd", "/etc/localtime", "Nowhere/City", 42, None, "x" * 500):
        assert viewer_zone(forged) is timezone.utc


def test_the_table_puts_the_result_first_and_explains_each_latency(history_db):
    store = HistoryStore(history_db)
    store.add({"kind": "service", "ok": True, "latency_ms": 9.0, "batch_size": 1, "queue_ms": 0.1, "image": "cat.png",
               "ts": 1_782_864_000.0})
    text = json.dumps(controller.history_view(store, "Asia/Tokyo").table.to_plotly_json(), default=lambda o: o.to_plotly_json())
    assert "time (Asia/Tokyo)" in text and "09:00:00" in text  # 00:00 UTC is 09:00 in Tokyo
    assert text.index('"result"') < text.index('"image"') < text.index("round trip")
    for word in ("Round trip:", "Backend total:", "Queue:", "Batch size:"):
        assert word in text


class StubPoller:
    """The status poller's snapshot without a backend: a dict the test changes."""

    def __init__(self, status: dict) -> None:
        self.status = status

    def snapshot(self) -> dict:
        return dict(self.status)


def _text(component) -> str:
    return json.dumps(component.to_plotly_json(), default=lambda o: o.to_plotly_json())


def test_the_alone_card_names_the_runtime_once_the_backend_reports_it(history_db):
    store = HistoryStore(history_db)
    seed(store, 10)
    poller = StubPoller({"reachable": True, "ready": True})
    views = controller.SharedViews(store, poller)
    before = views.view("UTC")
    assert "runtime: not reported by the backend" in _text(before.summary)
    poller.status["runtime"] = "litert"
    assert views.page_signature() != before.signature  # the polling page redraws for the runtime alone
    assert "runtime: litert" in _text(views.view("UTC").summary)
    poller.status["runtime"] = "litert " * 100  # a peer's text: capped like every other (React escapes markup)
    text = _text(views.view("UTC").summary)
    assert "runtime: litert litert" in text and "litert " * 100 not in text


def test_browsers_polling_unchanged_data_share_one_computed_view(history_db, monkeypatch):
    store = HistoryStore(history_db)
    seed(store, 300)
    views = controller.SharedViews(store, StubPoller({"runtime": "litert"}))
    computed = []
    real = controller.history_view
    monkeypatch.setattr(controller, "history_view", lambda *a: computed.append(a[1]) or real(*a))
    first = views.view("Europe/Berlin")
    assert views.view("Europe/Berlin") is first and views.page_signature() == first.signature == [300, 300, "litert"]
    assert computed == ["Europe/Berlin"]
    assert views.view("Asia/Tokyo") is not first  # another zone draws other times
    seed(store, 1, start=NOW)
    after = views.view("Europe/Berlin")
    assert after is not first and after.signature == [301, 301, "litert"] and len(computed) == 3
