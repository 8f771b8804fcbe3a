"""What every layer needs: the layer markers, the TensorFlow guard, real photos, the real backend process, CURVE keys.

Tests live in one folder per layer (tests/unit, tests/inprocess, tests/process,
tests/browser, tests/cluster); each test gets its folder's name as a marker, so ``-m unit``
selects a layer. A test that uses the ``backend`` fixture starts TensorFlow
(in the backend process) and is marked ``slow`` here. A test not marked
``slow`` that imports TensorFlow into the test process fails the session,
named in the summary: ``-m "not slow"`` never pays for TensorFlow.

The ``backend`` fixture runs ``python -m model_backend serve`` as a subprocess
with the default offline model, waits for its ready line, and terminates it
(SIGTERM) at the end of the session, checking that it exits cleanly.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.support.backend import BackendProcess, start_backend, stop_backend
from tests.support.helpers import png_bytes

#: the dashboard fixtures with the dash_duo browser-options hook, dashboard processes, the in-process servers, redis-server
pytest_plugins = ["tests.support.dash", "tests.support.dashboards", "tests.support.servers", "tests.support.redis_server",
                  "tests.support.postgres"]

TESTS = Path(__file__).resolve().parent
LAYERS = ("unit", "inprocess", "process", "browser", "cluster")
#: fixtures that start TensorFlow somewhere: a test using one is ``slow``
TENSORFLOW_FIXTURES = ("backend",)

_tensorflow_importers: list[str] = []


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        parts = item.path.resolve().relative_to(TESTS).parts
        if len(parts) > 1 and parts[0] in LAYERS:
            item.add_marker(parts[0])
        if any(name in item.fixturenames for name in TENSORFLOW_FIXTURES):
            item.add_marker("slow")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Note every test not marked ``slow`` that brought TensorFlow into this process (setup, call or teardown)."""
    before = "tensorflow" in sys.modules
    result = yield
    if not before and "tensorflow" in sys.modules and item.get_closest_marker("slow") is None:
        _tensorflow_importers.append(item.nodeid)
    return result


def pytest_sessionfinish(session) -> None:
    if _tensorflow_importers:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter) -> None:
    if _tensorflow_importers:
        terminalreporter.section("TensorFlow imported by tests not marked slow")
        for nodeid in _tensorflow_importers:
            terminalreporter.line(f"{nodeid}: mark it @pytest.mark.slow (TensorFlow tests live in tests/process/)")


@pytest.fixture(scope="session")
def chelsea_png() -> bytes:
    from skimage import data

    return png_bytes(data.chelsea())


@pytest.fixture(scope="session")
def coffee_png() -> bytes:
    from skimage import data

    return png_bytes(data.coffee())


@pytest.fixture(scope="session")
def chelsea_file(tmp_path_factory, chelsea_png) -> Path:
    path = tmp_path_factory.mktemp("photos") / "chelsea.png"
    path.write_bytes(chelsea_png)
    return path


@pytest.fixture(scope="session")
def coffee_file(tmp_path_factory, coffee_png) -> Path:
    path = tmp_path_factory.mktemp("photos") / "coffee.png"
    path.write_bytes(coffee_png)
    return path


@pytest.fixture(scope="session")
def backend(tmp_path_factory) -> BackendProcess:
    """The default offline model served by a real backend process for the whole session."""
    log_path = tmp_path_factory.mktemp("backend") / "backend.log"
    running = start_backend(log_path, "--max-batch", "16")
    yield running
    code = stop_backend(running)
    assert code == 0, f"backend exited with {code}:\n{running.log_text()[-3000:]}"


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Path:
    """A CURVE keys folder made by ``keys init`` (server, client and worker pairs, all allowed)."""
    from model_backend import keys_command

    folder = tmp_path_factory.mktemp("curve") / "KEYS"
    keys_command.init_keys(folder)
    return folder
