"""The dashboard in a real headless Chromium (dash_duo) against a real backend process.

Run with ``pytest --headless -m browser``; screenshots go to test-artifacts/ (gitignored).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dash.testing import wait

from dashboard.app import create_app
from dashboard.classify import ids as classify_ids
from dashboard.history import ids as history_ids
from dashboard.monolith import ids as monolith_ids
from dashboard.status import ids as status_ids
from model_backend.client import BackendClient
from tests.support.helpers import png_bytes

#: a real backend process (TensorFlow) behind every page: slow as well as browser
pytestmark = [pytest.mark.browser, pytest.mark.slow]


CAT_LABELS = ("Egyptian cat", "tiger cat", "tabby", "Persian cat", "Siamese cat")


@pytest.fixture
def started(dash_duo, backend, dash_settings):
    """The app with a real BackendClient, served to a real browser, once the status says the backend is ready."""
    settings = dash_settings(backend=backend.address, status_interval_ms=1000)
    with BackendClient(backend.client_settings) as client:
        dash_duo.start_server(create_app(settings, client))
        dash_duo.wait_for_contains_text(f"#{status_ids.STATUS}", "Backend ready", timeout=20)
        yield dash_duo


def top_bar_label(dash_duo) -> str:
    """The topmost category label of the first result's bar chart, as drawn on screen."""
    card = dash_duo.find_elements(f"#{classify_ids.RESULTS} .result-card")[0]
    ticks = card.find_elements("css selector", ".yaxislayer-above .ytick text")
    return min(ticks, key=lambda tick: tick.rect["y"]).text.strip()


def test_upload_a_photo_and_see_its_class_and_history(started, tmp_path, artifacts_dir):
    from skimage import data

    dash_duo = started
    photo = tmp_path / "chelsea.png"
    photo.write_bytes(png_bytes(data.chelsea()))

    dash_duo.find_element(f"#{classify_ids.UPLOAD} input[type=file]").send_keys(str(photo))

    dash_duo.wait_for_element(f"#{classify_ids.RESULTS} .result-card .topk-graph .main-svg", timeout=30)
    dash_duo.wait_for_contains_text(f"#{classify_ids.RESULTS} .result-card .top1", "Egyptian cat", timeout=10)
    assert top_bar_label(dash_duo) == "Egyptian cat"
    assert "chelsea.png" in dash_duo.find_element(f"#{classify_ids.RESULTS} .result-card .card-header").text
    assert "ms" in dash_duo.find_element(f"#{classify_ids.RESULTS} .roundtrip").text
    assert "inference" in dash_duo.find_element(f"#{classify_ids.RESULTS} .stage-table").text
    dash_duo.wait_for_text_to_equal("#service-count", "1", timeout=10)
    dash_duo.wait_for_contains_text(f"#{history_ids.HISTORY_TABLE}", "chelsea.png", timeout=10)

    assert dash_duo.get_logs() == []
    dash_duo.driver.save_screenshot(str(artifacts_dir / "dashboard.png"))


def test_several_files_at_once_and_refusals_are_explained(started, tmp_path, coffee_png):
    dash_duo = started
    (tmp_path / "coffee.png").write_bytes(coffee_png)
    (tmp_path / "notes.txt").write_text("this is not a photo")
    paths = "\n".join(str(tmp_path / name) for name in ("coffee.png", "notes.txt"))
    dash_duo.find_element(f"#{classify_ids.UPLOAD} input[type=file]").send_keys(paths)

    dash_duo.wait_for_contains_text(f"#{classify_ids.REFUSALS}", "notes.txt", timeout=30)
    assert "not an image, or corrupt" in dash_duo.find_element(f"#{classify_ids.REFUSALS}").text
    dash_duo.wait_for_contains_text(f"#{classify_ids.RESULTS} .result-card .top1", "espresso", timeout=10)
    dash_duo.wait_for_text_to_equal("#service-count", "1", timeout=10)

    dash_duo.find_element(f"#{history_ids.DOWNLOAD_BUTTON}").click()  # the CSV lands in dash_duo's download folder
    download = Path(dash_duo.download_path)
    wait.until(lambda: list(download.glob("warmserve-history-*.csv")), timeout=10)
    assert "notes.txt" in next(download.glob("warmserve-history-*.csv")).read_text()

    dash_duo.find_element(f"#{history_ids.CLEAR_BUTTON}").click()  # asks first
    dash_duo.wait_for_contains_text(".modal-title", "Clear the latency history?", timeout=10)
    dash_duo.find_element(f"#{history_ids.CLEAR_CONFIRM}").click()
    dash_duo.wait_for_text_to_equal("#service-count", "0", timeout=10)
    assert dash_duo.get_logs() == []


@pytest.mark.slow
def test_example_then_monolith_comparison(started, artifacts_dir):
    dash_duo = started
    for name in ("coffee.jpg", "rocket.jpg", "chelsea.jpg"):
        dash_duo.find_element(f"button[id*='{name}']").click()
        dash_duo.wait_for_contains_text(f"#{classify_ids.RESULTS} .result-card .card-header", name, timeout=30)
    assert top_bar_label(dash_duo) in CAT_LABELS

    button = dash_duo.find_element(f"#{monolith_ids.MONOLITH_BUTTON}")
    button.click()
    dash_duo.wait_for_contains_text(f"#{monolith_ids.MONOLITH_PROGRESS}", "Running the monolith on chelsea.jpg", timeout=20)
    assert not button.is_enabled()  # disabled while it runs
    dash_duo.wait_for_contains_text(f"#{monolith_ids.MONOLITH_RESULT}", "import TensorFlow", timeout=120)
    assert button.is_enabled()
    dash_duo.wait_for_text_to_equal("#monolith-count", "1", timeout=10)
    dash_duo.wait_for_contains_text(f"#{history_ids.HISTORY_SUMMARY}", "faster", timeout=10)

    assert dash_duo.get_logs() == []
    dash_duo.driver.save_screenshot(str(artifacts_dir / "dashboard-monolith.png"))
