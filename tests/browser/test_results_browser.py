"""Results survive and many images fit: the classify results in a real headless Chromium (issue 10, items 4 and 5).

A stub backend client (no sockets, no TensorFlow) answers like a ready
LiteRT backend, or, once ``down`` is set, like one that is not there. Each
test runs at a desktop (1280 x 900) and a phone (390 x 844) viewport and
leaves screenshots in test-artifacts/results-*.png.

Run with ``pytest --headless tests/browser/test_results_browser.py``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from dashboard.app import create_app, stop_app
from dashboard.classify import ids as classify_ids
from dashboard.monolith import ids as monolith_ids
from dashboard.status import ids as status_ids
from model_backend.errors import BackendUnavailable
from tests.support.browser import VIEWPORTS, set_viewport, stub_classify_reply
from tests.support.helpers import free_port, png_bytes, wait_for

pytestmark = [pytest.mark.browser]

SESSION_RESULTS = 50
MAX_IMAGE_BYTES = 32 * 1024  # over every example photo, under big.png
PREDICTIONS = [{"index": 967, "label": "espresso", "p": 0.86}, {"index": 968, "label": "cup", "p": 0.06}]


class StubBackend:
    """A ready backend that calls every image an espresso; with ``down`` set, one that does not answer."""

    def __init__(self) -> None:
        self.down = False
        self.checks = 0

    def ping(self) -> dict:
        if self.down:
            raise BackendUnavailable("No model backend is answering at tcp://127.0.0.1:1.")
        return {"ok": True, "ready": True, "model": "efficientnet-lite0"}

    def info(self) -> dict:
        self.ping()
        self.checks += 1
        return {"ok": True, "ready": True, "model": "efficientnet-lite0", "runtime": "litert", "max_batch": 16,
                "max_wait_ms": 2, "queue_size": 256, "in_flight": 0, "uptime_s": 65 + self.checks, "requests_served": 7}

    def classify(self, image_bytes: bytes, top_k: int = 5) -> dict:
        self.ping()
        return stub_classify_reply(PREDICTIONS)

    def close(self) -> None:
        pass


@pytest.fixture(params=sorted(VIEWPORTS))
def page(request, dash_duo, dash_settings):
    """(dash_duo, the stub backend): the dashboard at one viewport, once the status bar says ready."""
    width, height = VIEWPORTS[request.param]
    backend = StubBackend()
    app = create_app(dash_settings(status_interval_ms=1000, session_results=SESSION_RESULTS,
                                   max_image_bytes=MAX_IMAGE_BYTES), backend)
    dash_duo.start_server(app, port=free_port())  # other sessions may be running dash_duo's default port
    set_viewport(dash_duo, width, height)
    dash_duo.wait_for_contains_text(f"#{status_ids.STATUS}", "Backend ready", timeout=20)
    dash_duo.viewport = request.param
    yield dash_duo, backend
    stop_app(app)


def script(dash_duo, code: str, *args):
    return dash_duo.driver.execute_script(code, *args)


def click(dash_duo, selector: str) -> None:
    """Scroll the element to the middle of the viewport, then click it as a user would."""
    element = dash_duo.find_element(selector)
    script(dash_duo, "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", element)
    element.click()


def drop_files(dash_duo, paths) -> None:
    dash_duo.find_element(f"#{classify_ids.UPLOAD} input[type=file]").send_keys("\n".join(str(p) for p in paths))


def shade(tmp_path, name: str, level: int):
    """A small PNG of one grey level (each level a different image, so a different sha256)."""
    path = tmp_path / name
    path.write_bytes(png_bytes(np.full((24, 24, 3), level, dtype=np.uint8)))
    return path


def picker(dash_duo) -> tuple[list[str], str | None]:
    """The monolith dropdown's option labels (opened and read as a user would) and its selected label."""
    click(dash_duo, f"#{monolith_ids.MONOLITH_IMAGE}")
    options = wait_for(lambda: [o.text for o in dash_duo.find_elements(".dash-dropdown-option, .Select-option")],
                       5, "the dropdown's options")
    selected = script(dash_duo, f"return document.getElementById('{monolith_ids.MONOLITH_IMAGE}').innerText.trim()")
    script(dash_duo, "document.activeElement && document.activeElement.blur(); document.body.click()")
    dash_duo.find_element("body").send_keys("\ue00c")  # Escape closes the menu
    return options, selected


def thumbnails_loaded(dash_duo, selector: str) -> bool:
    return script(dash_duo, "const imgs = [...document.querySelectorAll(arguments[0])];"
                            "return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0)", selector)


def no_sideways_scroll(dash_duo) -> bool:
    return script(dash_duo, "return document.documentElement.scrollWidth <= window.innerWidth")


def test_results_survive_a_reload_and_the_monolith_offers_every_one(page, tmp_path, artifacts_dir):
    dash_duo, _backend = page
    click(dash_duo, "button[id*='coffee.jpg']")
    dash_duo.wait_for_element(f"#{classify_ids.RESULTS} .result-card", timeout=20)
    drop_files(dash_duo, [shade(tmp_path, "grey.png", 128)])
    dash_duo.wait_for_contains_text(f"#{classify_ids.RESULTS} .result-card .result-name", "grey.png", timeout=20)
    # The newest result is a full card; the earlier one a tile under it.
    assert dash_duo.find_element(f"#{classify_ids.RESULTS} .earlier-title").text == "Earlier in this session (1)"
    assert "coffee.jpg" in dash_duo.find_element(f"#{classify_ids.RESULTS} .earlier-grid .tile-name").text
    assert f"keeps your last {SESSION_RESULTS} results" in dash_duo.find_element(".session-note").text
    assert picker(dash_duo) == (["grey.png", "coffee.jpg"], "grey.png")

    dash_duo.driver.refresh()
    dash_duo.wait_for_contains_text(f"#{classify_ids.RESULTS} .result-card .result-name", "grey.png", timeout=20)
    assert "coffee.jpg" in dash_duo.find_element(f"#{classify_ids.RESULTS} .earlier-grid .tile-name").text
    assert "espresso" in dash_duo.find_element(f"#{classify_ids.RESULTS} .result-card .top1").text
    assert picker(dash_duo) == (["grey.png", "coffee.jpg"], "grey.png")  # not "Classify an image first"
    # The thumbnails come from the server (the browser keeps no image): every one of them loads.
    wait_for(lambda: thumbnails_loaded(dash_duo, f"#{classify_ids.RESULTS} img"), 10, "the thumbnails")
    stored = script(dash_duo, f"return sessionStorage.getItem('{classify_ids.SESSION_RESULTS}')")
    assert "data:image" not in stored and len(stored) < 4000
    assert no_sideways_scroll(dash_duo)
    script(dash_duo, f"document.getElementById('{classify_ids.RESULTS}').scrollIntoView({{block: 'start', behavior: 'instant'}})")
    dash_duo.driver.save_screenshot(str(artifacts_dir / f"results-reload-{dash_duo.viewport}.png"))
    assert dash_duo.get_logs() == []


def test_a_drop_while_the_backend_is_down_keeps_the_results_and_the_picker(page, tmp_path, artifacts_dir):
    dash_duo, backend = page
    click(dash_duo, "button[id*='coffee.jpg']")
    dash_duo.wait_for_element(f"#{classify_ids.RESULTS} .result-card", timeout=20)
    backend.down = True
    drop_files(dash_duo, [shade(tmp_path, "late.png", 40)])
    dash_duo.wait_for_contains_text(f"#{classify_ids.REFUSALS} .refusals", "late.png", timeout=20)
    alert = dash_duo.find_element(f"#{classify_ids.REFUSALS} .refusals").text
    assert "backend down" in alert and "No model backend is answering" in alert
    # Nothing was removed: the earlier card, and the picker still offers (and selects) it.
    assert "coffee.jpg" in dash_duo.find_element(f"#{classify_ids.RESULTS} .result-card .result-name").text
    assert picker(dash_duo) == (["coffee.jpg"], "coffee.jpg")
    script(dash_duo, f"document.getElementById('{classify_ids.REFUSALS}').scrollIntoView({{block: 'start', behavior: 'instant'}})")
    dash_duo.driver.save_screenshot(str(artifacts_dir / f"results-backend-down-{dash_duo.viewport}.png"))
    assert dash_duo.get_logs() == []


def test_sixteen_images_show_a_grid_that_opens_and_each_refusal_says_its_own_reason(page, tmp_path, artifacts_dir):
    dash_duo, _backend = page
    images = [shade(tmp_path, f"img{i:02d}.png", 10 * i) for i in range(18)]  # 18 images: two over the 16
    big = tmp_path / "big.png"
    big.write_bytes(png_bytes(np.random.default_rng(0).integers(0, 255, (160, 160, 3), dtype=np.uint8)))
    assert big.stat().st_size > MAX_IMAGE_BYTES
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    drop_files(dash_duo, images[:5] + [big] + images[5:10] + [notes] + images[10:])
    dash_duo.wait_for_element(f"#{classify_ids.RESULTS} .result-grid .result-tile", timeout=30)

    tiles = dash_duo.find_elements(f"#{classify_ids.RESULTS} .result-grid .result-tile")
    assert len(tiles) == 16 and not dash_duo.find_elements(f"#{classify_ids.RESULTS} > div > .result-card")
    assert "16 images in this drop" in dash_duo.find_element(".drop-summary").text
    # Chromium hands a multi-file input's files over in an order of its own: names are matched, not positions.
    assert all(re.fullmatch(r"img\d\d\.png\nespresso\n86%\n[\d.]+ ms", tile.text) for tile in tiles), tiles[0].text

    # Each refused file is named once, with its own first reason: size and format before count.
    lines = [li.text for li in dash_duo.find_elements(f"#{classify_ids.REFUSALS} li")]
    by_name = {line.split(" — ")[0]: line for line in lines}
    extra = sorted(set(by_name) - {"big.png", "notes.txt"})
    assert len(by_name) == 4 and len(extra) == 2 and all(name.startswith("img") for name in extra), lines
    assert "over the size limit" in by_name["big.png"]
    assert "not an image" in by_name["notes.txt"]
    for name in extra:
        said = re.fullmatch(rf"{name} — not sent: only 16 images are sent per drop and this was file (\d+); "
                            "drop it again in a smaller batch.", by_name[name])
        assert said and 16 < int(said.group(1)) <= 20, by_name[name]
    shown = {tile.text.split("\n")[0] for tile in tiles}
    assert len(shown) == 16 and not shown & set(extra)
    assert all(line.lower().count("not sent") <= 1 for line in lines)
    wait_for(lambda: thumbnails_loaded(dash_duo, f"#{classify_ids.RESULTS} .tile-thumb"), 10, "the tile thumbnails")
    assert no_sideways_scroll(dash_duo)
    script(dash_duo, f"document.getElementById('{classify_ids.REFUSALS}').scrollIntoView({{block: 'start', behavior: 'instant'}})")
    dash_duo.driver.save_screenshot(str(artifacts_dir / f"results-grid-{dash_duo.viewport}.png"))

    # A tile opens to the full card (keyboard: Enter on its summary), its chart drawn at the card's width.
    summary = dash_duo.find_elements(f"#{classify_ids.RESULTS} .result-tile .tile-summary")[2]
    name = summary.text.split("\n")[0]
    script(dash_duo, "arguments[0].scrollIntoView({block: 'start', behavior: 'instant'})", summary)
    summary.send_keys("\ue007")  # Enter
    card = f"#{classify_ids.RESULTS} .result-tile[open] .result-card"
    dash_duo.wait_for_contains_text(f"{card} .result-name", name, timeout=10)
    wait_for(lambda: script(dash_duo, f"const g = document.querySelector('{card} .topk-graph .main-svg');"
                                      "return g && g.getBoundingClientRect().width > 150"), 10, "the opened card's chart")
    assert dash_duo.find_element(f"{card} .roundtrip").text.endswith("ms")
    assert no_sideways_scroll(dash_duo)
    dash_duo.driver.save_screenshot(str(artifacts_dir / f"results-tile-open-{dash_duo.viewport}.png"))
    assert dash_duo.get_logs() == []
