"""Layer guards: a test that reaches for what its layer may not use (a socket, a subprocess) fails at once, saying where
it belongs. tests/unit/conftest.py and tests/inprocess/conftest.py switch them on for their folders."""

from __future__ import annotations

import socket
import subprocess

import zmq


class WrongLayer(AssertionError):
    """A test used something its folder's layer may not use."""


def _refuse(what: str, layer: str, belongs: str):
    def refuse(*args, **kwargs):
        raise WrongLayer(f"a test in tests/{layer}/ opened {what}: move it to {belongs}")

    return refuse


def refuse_sockets(monkeypatch, layer: str) -> None:
    """No TCP socket and no ZeroMQ socket for the rest of this test."""
    belongs = "tests/inprocess/ (sockets in threads of the test process) or tests/process/"
    monkeypatch.setattr(socket.socket, "__init__", _refuse("a socket", layer, belongs))
    monkeypatch.setattr(zmq.Context, "socket", _refuse("a ZeroMQ socket", layer, belongs))


def refuse_subprocesses(monkeypatch, layer: str) -> None:
    """No subprocess for the rest of this test."""
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("a subprocess", layer, "tests/process/"))
