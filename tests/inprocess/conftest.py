"""The in-process layer runs everything in threads of the test process: a test here that starts a subprocess fails at once.

TensorFlow is guarded for every layer in tests/conftest.py.
"""

from __future__ import annotations

import pytest

from tests.support.guards import refuse_subprocesses


@pytest.fixture(autouse=True)
def in_this_process(monkeypatch):
    refuse_subprocesses(monkeypatch, "inprocess")
