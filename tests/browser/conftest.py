"""What every browser test needs: a real Chromium (a failure, never a skip, without one)."""

from __future__ import annotations

import pytest

from tests.support.dash import chromium_available


@pytest.fixture(autouse=True)
def require_chromium():
    """Fail (never skip) without a browser: ./run.sh test installs Debian's chromium and chromium-driver."""
    if not chromium_available():
        pytest.fail("chromium and chromedriver are needed: apt-get install -y chromium chromium-driver (./run.sh test does it as root)")
