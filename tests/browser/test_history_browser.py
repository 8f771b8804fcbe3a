"""The latency history in a real headless Chromium (dash_duo) at desktop (1280x900) and phone (390x844) sizes,
with a few and with thousands of records seeded straight into a private store (a stub backend: no TensorFlow).

Checks what a user sees: both charts drawn with several latency ticks, no browser console errors, no sideways
scrolling; screenshots go to test-artifacts/history-<size>-<records>.png.
"""

from __future__ import annotations

import sqlite3
import time

import numpy as np
import pytest

from dashboard.app import create_app, stop_app
from dashboard.history import ids as history_ids
from dashboard.history.store import ROW_COLUMNS, HistoryStore, _INSERT_ALL
from tests.support.browser import VIEWPORTS
from tests.support.dash import StubClient

pytestmark = [pytest.mark.browser]


def seed(store: HistoryStore, n: int) -> None:
    """``n`` successful requests over the last hour: half alone, half in batches, 1 in 100 a monolith run."""
    rng = np.random.default_rng(7)
    now = time.time()
    ts = np.sort(now - rng.uniform(0, 3600, n)) if n > 1 else np.array([now - 5])
    rows = []
    for i in range(n):
        monolith, alone = i % 100 == 99, i % 2 == 1
        row = dict.fromkeys(ROW_COLUMNS)
        row.update(ts=float(ts[i]), kind="monolith" if monolith else "service", ok=1, image=f"photo-{i}.jpg",
                   latency_ms=float(rng.lognormal(np.log(4000 if monolith else (8 if alone else 40)), 0.3)),
                   batch_size=1 if monolith or alone else int(rng.integers(2, 17)),
                   queue_ms=None if monolith else (0.2 if alone else 4.0), top1_label="Egyptian cat", top1_p=0.8)
        rows.append(row)
    with sqlite3.connect(store.path) as conn:
        conn.executemany(_INSERT_ALL, rows)


@pytest.mark.parametrize("records", [4, 5000])
@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_history_reads_well(dash_duo, dash_settings, artifacts_dir, size, records):
    settings = dash_settings(status_interval_ms=60_000)
    store = HistoryStore(settings.db_path)
    seed(store, records)
    app = create_app(settings, StubClient(), store)
    dash_duo.start_server(app)
    try:
        width, height = VIEWPORTS[size]
        dash_duo.driver.set_window_size(width, height)
        dash_duo.wait_for_contains_text(f"#{history_ids.HISTORY_SUMMARY}", "requests succeeded", timeout=15)
        dash_duo.wait_for_element(f"#{history_ids.HISTORY_GRAPH} .ytick", timeout=15)
        dash_duo.wait_for_element(f"#{history_ids.HISTORY_DISTRIBUTION} .ytick", timeout=15)
        time.sleep(0.5)  # let the resize settle before measuring and taking pictures
        for graph in (history_ids.HISTORY_GRAPH, history_ids.HISTORY_DISTRIBUTION):
            ticks = [t.text for t in dash_duo.find_elements(f"#{graph} .ytick text") if t.text.strip()]
            assert len(ticks) >= 2 and all(t.endswith(("ms", " s")) for t in ticks), ticks
            assert not dash_duo.find_elements(f"#{graph} .modebar-container .modebar")  # no toolbar over the plot
        key = dash_duo.find_element(f"#{history_ids.HISTORY_KEY}")  # the charts' colour key: one line, even on a phone
        assert " ".join(key.text.split()) == "alone under load monolith", key.text
        assert key.rect["height"] < 30, key.rect
        x_labels = dash_duo.find_elements(f"#{history_ids.HISTORY_GRAPH} .xtick text")
        assert x_labels and all("rotate" not in (t.get_attribute("transform") or "") for t in x_labels)
        zone = dash_duo.driver.execute_script("return Intl.DateTimeFormat().resolvedOptions().timeZone")
        assert f"time ({zone})" in dash_duo.find_element(f"#{history_ids.HISTORY_GRAPH}").text
        note = dash_duo.find_element(f"#{history_ids.HISTORY_TIME_NOTE}").text
        assert ("p95 (dotted) per" in note) if records > 1000 else ("one request" in note)
        scroll, inner = dash_duo.driver.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll <= inner, (scroll, inner)
        table = dash_duo.find_element(f"#{history_ids.HISTORY_TABLE} table")
        assert table.rect["x"] + table.rect["width"] <= inner + 1
        result_header = dash_duo.find_elements(f"#{history_ids.HISTORY_TABLE} th")[1]
        assert result_header.text == "result" and result_header.is_displayed()
        section = dash_duo.find_element(f"#{history_ids.HISTORY_SUMMARY}").find_element(
            "xpath", "ancestor::div[contains(concat(' ', @class, ' '), ' card ')][1]")
        dash_duo.driver.set_window_size(width, 1900)  # same width, tall enough for the whole section in one picture
        time.sleep(0.5)
        dash_duo.driver.execute_script("arguments[0].scrollIntoView()", section)
        time.sleep(0.5)
        dash_duo.driver.save_screenshot(str(artifacts_dir / f"history-{size}-{records}.png"))
        errors = [entry for entry in dash_duo.get_logs() or [] if entry.get("level") == "SEVERE"]
        assert not errors, errors
    finally:
        stop_app(app)
