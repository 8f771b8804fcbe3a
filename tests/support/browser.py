"""Browser-test helpers: the two screen sizes every page is checked at, and sizing the page to one of them."""

from __future__ import annotations

#: name -> (width, height) of the page itself (CSS pixels)
VIEWPORTS = {"desktop": (1280, 900), "phone": (390, 844)}


def set_viewport(dash_duo, width: int, height: int) -> None:
    """Make the page itself (window.innerWidth x innerHeight) width x height.

    The window is sized so the page gets exactly that (the browser's frame differs between runs, so it is
    measured and corrected, a few times); a headless window that will not take the size is emulated instead
    (DevTools' device metrics), which gives the page exactly that size either way.
    """
    driver = dash_duo.driver
    inner = lambda: driver.execute_script("return [window.innerWidth, window.innerHeight]")  # noqa: E731
    driver.set_window_size(width, height)
    for _ in range(3):
        inner_width, inner_height = inner()
        if [inner_width, inner_height] == [width, height]:
            return
        outer = driver.get_window_size()
        driver.set_window_size(outer["width"] + width - inner_width, outer["height"] + height - inner_height)
    if inner() != [width, height]:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
    assert inner() == [width, height], inner()


def stub_classify_reply(predictions: list[dict]) -> dict:
    """What a ready LiteRT backend answers for one image, as the browser tests' stub backends give it."""
    return {"ok": True, "predictions": predictions, "model": "efficientnet-lite0",
            "timings_ms": {"queue": 0.4, "decode": 2.1, "preprocess": 0.6, "inference": 11.0, "total": 14.5},
            "batch_size": 1}
