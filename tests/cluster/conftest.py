"""The cluster layer: a whole deployment on this machine, one network namespace per host (see topology.py).

Every test here gets the ``cluster`` marker from its folder (tests/conftest.py), so ``-m cluster`` selects
the layer and ``-m "not cluster"`` leaves it out. It needs root and ``ip`` (iproute2): without them the
tests FAIL saying so, never skip (CI runs as root). The ``cluster`` fixture is per module; when a test
fails, the end of every process's log is added to its report.
"""

from __future__ import annotations

import pytest

from tests.cluster.topology import Cluster, start_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Cluster:
    running = start_cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield running
    finally:
        running.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    running = item.funcargs.get("cluster") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(running, Cluster):
        report.sections.append(("cluster logs (the end of each)", running.logs_tail()))
        report.sections.append(("cluster log folder", str(running.folder)))
    return report
