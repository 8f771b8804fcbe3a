"""Every number explained, confidence visible, keyboard and screen-reader basics: the page in a real headless Chromium.

A stub backend client (no sockets, no TensorFlow) answers like a ready
LiteRT backend with two requests in flight; it is sure about the example
photos and unsure (14%) about anything else. Each test runs at a desktop
(1280 x 900) and a phone (390 x 844) viewport and leaves a screenshot in
test-artifacts/.

Run with ``pytest --headless tests/browser/test_explain_browser.py``.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from dashboard.app import create_app, stop_app
from dashboard.classify import ids as classify_ids
from dashboard.classify.layout import CARD_STAGES
from dashboard.common.glossary import SERVICE_TERMS
from dashboard.monolith import ids as monolith_ids
from dashboard.status import ids as status_ids
from tests.support.browser import VIEWPORTS, set_viewport, stub_classify_reply
from tests.support.helpers import ROOT, free_port, png_bytes, wait_for

pytestmark = [pytest.mark.browser]

UNSURE_BELOW = 0.30
#: the stub's unsure answer: a 14% "barbell"
UNSURE_PREDICTIONS = [{"index": 422, "label": "barbell", "p": 0.14}, {"index": 543, "label": "dumbbell", "p": 0.12}]
SURE_PREDICTIONS = [{"index": 967, "label": "espresso", "p": 0.86}, {"index": 968, "label": "cup", "p": 0.06}]


class StubBackend:
    """Answers like a ready LiteRT backend; sure about the example photos, unsure about every other image."""

    def __init__(self) -> None:
        examples = (ROOT / "assets" / "examples").glob("*.jpg")
        self.sure = {hashlib.sha256(path.read_bytes()).hexdigest() for path in examples}
        self.checks = 0

    def ping(self) -> dict:
        return {"ok": True, "ready": True, "model": "efficientnet-lite0"}

    def info(self) -> dict:
        return {"ok": True, "ready": True, "model": "efficientnet-lite0", "runtime": "litert",
                "runtime_reason": "LiteRT/XNNPACK on CPU: the conversion verified against Keras.", "max_batch": 16,
                "max_wait_ms": 2, "queue_size": 256, "in_flight": 2, "uptime_s": 65 + self._next(), "requests_served": 7}

    def _next(self) -> int:
        """One more status check (the uptime moves on, so each check redraws the status bar)."""
        self.checks += 1
        return self.checks

    def classify(self, image_bytes: bytes, top_k: int = 5) -> dict:
        sure = hashlib.sha256(image_bytes).hexdigest() in self.sure
        return stub_classify_reply(SURE_PREDICTIONS if sure else UNSURE_PREDICTIONS)

    def close(self) -> None:
        pass


@pytest.fixture(params=sorted(VIEWPORTS))
def page(request, dash_duo, dash_settings):
    """The dashboard on the stub backend, at one viewport, once the status bar says ready."""
    width, height = VIEWPORTS[request.param]
    app = create_app(dash_settings(status_interval_ms=1000, unsure_below=UNSURE_BELOW), StubBackend())
    dash_duo.start_server(app, port=free_port())  # other sessions may be running dash_duo's default port
    set_viewport(dash_duo, width, height)
    dash_duo.wait_for_contains_text(f"#{status_ids.STATUS}", "Backend ready", timeout=20)
    dash_duo.viewport = request.param
    yield dash_duo
    stop_app(app)


def script(dash_duo, code: str, *args):
    return dash_duo.driver.execute_script(code, *args)


def tab_until(dash_duo, selector: str, limit: int = 60) -> None:
    """Press Tab from the top of the page until the element ``selector`` names has the focus (fails after ``limit``)."""
    script(dash_duo, "document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);")
    for _ in range(limit):
        ActionChains(dash_duo.driver).send_keys(Keys.TAB).perform()
        if script(dash_duo, "return document.activeElement.matches(arguments[0])", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def accessible_names(dash_duo, role: str) -> list[str]:
    """The names Chromium gives the page's elements of this role: what a screen reader announces."""
    nodes = dash_duo.driver.execute_cdp_cmd("Accessibility.getFullAXTree", {})["nodes"]
    return [node.get("name", {}).get("value", "") for node in nodes
            if not node.get("ignored") and node.get("role", {}).get("value") == role]


def click(dash_duo, selector: str) -> None:
    """Scroll the element to the middle of the viewport, then click it as a user would."""
    element = dash_duo.find_element(selector)
    script(dash_duo, "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", element)  # Bootstrap scrolls smoothly
    element.click()


def drop_file(dash_duo, path) -> None:
    dash_duo.find_element(f"#{classify_ids.UPLOAD} input[type=file]").send_keys(str(path))


def test_keyboard_reaches_the_drop_zone_sees_its_ring_and_opens_the_file_dialog(page, artifacts_dir):
    dash_duo = page
    assert script(dash_duo, "return document.documentElement.lang") == "en"
    # No chart, empty or not, puts a zoom toolbar over the page.
    dash_duo.wait_for_element(".history-graph .main-svg, .js-plotly-plot .main-svg", timeout=10)
    assert script(dash_duo, "return document.querySelectorAll('.modebar').length") == 0
    zone = f"#{classify_ids.UPLOAD} .upload-zone"
    assert script(dash_duo, f"return getComputedStyle(document.querySelector('{zone}')).outlineStyle") == "none"

    file_input = f"#{classify_ids.UPLOAD} input[type=file]"
    tab_until(dash_duo, file_input)
    ring = script(dash_duo, f"const s = getComputedStyle(document.querySelector('{zone}'));"
                            "return [s.outlineStyle, parseFloat(s.outlineWidth), s.outlineColor];")
    assert ring[0] == "solid" and ring[1] >= 2, ring  # the zone is ringed while its file input has the focus
    assert script(dash_duo, "return document.querySelector(arguments[0]).labels.length", file_input) == 1
    assert any(name.startswith("Drag and drop images here, or Choose images…") for name in accessible_names(dash_duo, "button"))
    dash_duo.driver.save_screenshot(str(artifacts_dir / f"explain-focus-{dash_duo.viewport}.png"))

    # Enter, then Space, on the zone's file input open the file dialog (intercepted: no dialog shows).
    dash_duo.driver.execute_cdp_cmd("Page.setInterceptFileChooserDialog", {"enabled": True})
    script(dash_duo, "window.fileDialogs = 0; document.querySelector(arguments[0])"
                     ".addEventListener('click', () => { window.fileDialogs += 1; });", file_input)
    ActionChains(dash_duo.driver).send_keys(Keys.ENTER).perform()
    assert wait_value(dash_duo, "return window.fileDialogs") == 1
    ActionChains(dash_duo.driver).send_keys(" ").perform()
    assert wait_value(dash_duo, "return window.fileDialogs", at_least=2) == 2
    click(dash_duo, f"#{classify_ids.UPLOAD_BUTTON}")  # a click on the zone opens it once, not twice
    assert wait_value(dash_duo, "return window.fileDialogs", at_least=3) == 3

    # The examples are buttons with names; Tab reaches the first and Enter classifies it.
    names = script(dash_duo, "return [...document.querySelectorAll('.example-thumb')]"
                             ".map(b => [b.tagName, b.getAttribute('aria-label')])")
    assert names and all(tag == "BUTTON" and label.startswith("Classify the example photo") for tag, label in names)
    tab_until(dash_duo, ".example-thumb")
    outline = script(dash_duo, "const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth]")
    assert outline[0] == "solid", outline
    ActionChains(dash_duo.driver).send_keys(Keys.ENTER).perform()
    dash_duo.wait_for_element(f"#{classify_ids.RESULTS} .result-card", timeout=20)
    assert "espresso" in dash_duo.find_element(f"#{classify_ids.RESULTS} .top1").text
    assert not dash_duo.find_elements(".unsure-badge")  # 86% is sure

    # Labels: the monolith's dropdown has a visible one, the upload button says what it does.
    label = script(dash_duo, f"const l = document.querySelector('label[for=\"{monolith_ids.MONOLITH_IMAGE}\"]');"
                             "return [l.textContent, l.parentElement.getAttribute('role'), "
                             "document.getElementById(l.parentElement.getAttribute('aria-labelledby')) === l]")
    assert label == ["Image to run the monolith on", "group", True]
    assert dash_duo.get_logs() == []


def tooltips_text(dash_duo) -> str:
    """The text of every tooltip shown now (another may still be fading out: the first is not always ours)."""
    return script(dash_duo, "return [...document.querySelectorAll('.tooltip')].map(t => t.textContent).join(' | ')")


def wait_tooltip(dash_duo, text: str, timeout_s: float = 5.0) -> None:
    wait_for(lambda: text in tooltips_text(dash_duo), timeout_s, f"a tooltip saying {text!r}")


def wait_value(dash_duo, code: str, at_least: int = 1, timeout_s: float = 5.0):
    wait_for(lambda: (script(dash_duo, code) or 0) >= at_least, timeout_s, code)
    return script(dash_duo, code)


def test_every_number_is_explained_and_an_unsure_result_says_so(page, tmp_path, artifacts_dir):
    dash_duo = page
    dash_duo.wait_for_contains_text(".status-bar", "requests in flight 2 of 256 max", timeout=10)
    bar = dash_duo.find_element(".status-bar").text
    assert "runtime litert" in bar and "queue capacity" not in bar and "queue 256" not in bar
    # A keyboard user on a status term keeps the focus and the tooltip while the bar refreshes every second.
    state = dash_duo.find_element(f"#{status_ids.STATUS}").text
    tab_until(dash_duo, "#status-term-in_flight")
    wait_tooltip(dash_duo, "accepted and not answered yet")
    wait_for(lambda: dash_duo.find_element(f"#{status_ids.STATUS}").text != state, 10, "a status refresh")
    assert script(dash_duo, "return document.activeElement.id") == "status-term-in_flight"
    assert "accepted and not answered yet" in tooltips_text(dash_duo)
    tab_until(dash_duo, "#status-term-runtime")  # the runtime's tooltip says why the backend chose it
    wait_tooltip(dash_duo, "the conversion verified against Keras")
    script(dash_duo, "document.activeElement.blur()")

    photo = tmp_path / "dark.png"
    photo.write_bytes(png_bytes(np.zeros((32, 32, 3), dtype=np.uint8)))
    drop_file(dash_duo, photo)
    dash_duo.wait_for_element(f"#{classify_ids.RESULTS} .result-card .topk-graph .main-svg", timeout=20)

    # The unsure badge, its tooltip naming the threshold, and muted bars.
    badge = dash_duo.find_element(f"#{classify_ids.RESULTS} .unsure-badge")
    assert badge.text == "unsure"
    help_text = script(dash_duo, "return document.getElementById(arguments[0].getAttribute('aria-describedby'))"
                                 ".textContent", badge)
    assert "14.0%" in help_text and "30%" in help_text
    # Keyboard focus shows the tooltip as hover does; the badge is found afresh each try, because the results
    # area may be drawn again (from the session's store) just after the drop.
    badge_selector = f"#{classify_ids.RESULTS} .unsure-badge"
    wait_for(lambda: script(dash_duo, "const b = document.querySelector(arguments[0]); if (b) b.focus(); "
                                      "return [...document.querySelectorAll('.tooltip')].some("
                                      "t => t.textContent.includes('threshold of 30%'))", badge_selector),
             10, "the unsure badge's tooltip on keyboard focus")
    bar_colours = script(dash_duo, "return [...document.querySelectorAll('#results .topk-graph .point path')]"
                                   ".map(p => getComputedStyle(p).fill)")
    assert bar_colours and all(colour in ("rgb(100, 116, 139)", "rgb(148, 163, 184)") for colour in bar_colours), bar_colours
    dash_duo.driver.save_screenshot(str(artifacts_dir / f"explain-unsure-{dash_duo.viewport}.png"))

    # Every stage of the card, the round trip and the batch size: a tab stop whose tooltip defines it.
    keys = [key for key, _ in CARD_STAGES] + ["total", "roundtrip", "batch_size"]
    for key in keys:
        term = dash_duo.find_element(f"#result-0-{key}")
        assert term.get_attribute("tabindex") == "0"
        described = script(dash_duo, "return document.getElementById(arguments[0].getAttribute('aria-describedby'))"
                                     ".textContent", term)
        assert described == SERVICE_TERMS[key]
    script(dash_duo, "document.getElementById('result-0-queue').focus()")
    wait_tooltip(dash_duo, "waiting inside the backend")
    dash_duo.driver.save_screenshot(str(artifacts_dir / f"explain-tooltip-{dash_duo.viewport}.png"))
    assert dash_duo.get_logs() == []


def fake_monolith(path, *, model=None, timeout_s=180.0, on_progress=None, pass_fds=()):
    """Stands in for the monolith subprocess: its JSON and the wall clock, at once (no TensorFlow)."""
    timings = {"startup": 950.0, "import": 2500.0, "model_load": 800.0, "preprocess": 20.0, "inference": 750.0,
               "total": 5020.0}
    return {"model": model, "runtime": "tensorflow", "timings_ms": timings,
            "predictions": [{"index": 967, "label": "espresso", "p": 0.86}]}, 4960.0


def test_the_monolith_panel_adds_up_to_the_wall_clock_and_names_its_runtime(page, monkeypatch, artifacts_dir):
    from dashboard.history.store import HistoryStore
    from dashboard.monolith import controller
    from dashboard.monolith.layout import REST_LABEL

    def job(settings, sha256, on_progress):  # the background job runs in a forked process: it sees this patch
        return controller.run_monolith_view(settings, HistoryStore.from_settings(settings), sha256, on_progress,
                                            runner=fake_monolith)

    monkeypatch.setattr(controller, "run_monolith_job", job)
    dash_duo = page
    click(dash_duo, "button[id*='coffee.jpg']")
    dash_duo.wait_for_contains_text(f"#{classify_ids.RESULTS} .top1", "espresso", timeout=20)
    click(dash_duo, f"#{monolith_ids.MONOLITH_BUTTON}")
    dash_duo.wait_for_contains_text(f"#{monolith_ids.MONOLITH_RESULT}", REST_LABEL, timeout=30)

    rows = script(dash_duo, f"return [...document.querySelectorAll('#{monolith_ids.MONOLITH_RESULT} tr')]"
                            ".map(r => [...r.cells].map(c => c.innerText.trim()))")
    assert rows == [["import TensorFlow", "2.50 s"], ["build + load model", "800 ms"], ["decode + preprocess", "20.0 ms"],
                    ["inference (cold)", "750 ms"], [REST_LABEL, "890 ms"], ["wall clock (what you waited)", "4.96 s"]]
    panel = dash_duo.find_element(f"#{monolith_ids.MONOLITH_RESULT}").text
    assert "on tensorflow" in panel and "service requests that ran alone" in panel  # like with like
    script(dash_duo, "document.getElementById('monolith-rest').scrollIntoView({block: 'center', behavior: 'instant'});"
                     "document.getElementById('monolith-rest').focus()")
    wait_tooltip(dash_duo, "TensorFlow's shutdown")
    dash_duo.driver.save_screenshot(str(artifacts_dir / f"explain-monolith-{dash_duo.viewport}.png"))
    assert dash_duo.get_logs() == []
