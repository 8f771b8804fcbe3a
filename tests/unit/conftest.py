"""The unit layer stays pure: a test here that opens a socket, a ZeroMQ socket or a subprocess fails at once.

TensorFlow is guarded for every layer in tests/conftest.py.
"""

from __future__ import annotations

import pytest

from tests.support.guards import refuse_sockets, refuse_subprocesses


@pytest.fixture(autouse=True)
def pure(monkeypatch):
    refuse_sockets(monkeypatch, "unit")
    refuse_subprocesses(monkeypatch, "unit")
