"""Browser-test helpers: the two screen sizes every page is checked at, and sizing the page to one of them."""

from __future__ import annotations

#: name -> (width, height) of the page itself (CSS pixels)
VIEWPORTS = {"desktop": (1280, 900), "phone": (390, 844)}


def set_viewport(dash_duo, width: int, height: int) -> None:
    """Size the window so that the page itself (window.innerWidth x innerHeight) is width x height."""
    driver = dash_duo.driver
    driver.set_window_size(width, height)
    inner_width, inner_height = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    driver.set_window_size(2 * width - inner_width, 2 * height - inner_height)
    assert driver.execute_script("return [window.innerWidth, window.innerHeight]") == [width, height]
