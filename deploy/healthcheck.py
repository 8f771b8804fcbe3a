"""A dashboard container's health probe: ``python deploy/healthcheck.py ready|live`` (standard library only).

It asks the dashboard in the same container for ``GET /api/v1/health`` (answered from the status
poller's state within 1 s, never a backend call) and exits 0 or 1:

- ``ready``: 200 only, i.e. the dashboard serves and its backend is ready (Kubernetes readinessProbe:
  a replica whose backend is unreachable stops getting traffic);
- ``live``: any answer that shows the web server works: 200, 503 (backend starting, down or stale) or 401
  (auth on and no probe user). A dead backend must not get a healthy dashboard restarted (livenessProbe,
  compose healthcheck).

It connects to 127.0.0.1 on ``WARMSERVE_DASH_PORT`` (8050) with ``Host: localhost``, which every
dashboard accepts whatever ``--allowed-hosts`` says. With auth on (a users file), ``ready`` needs a
login: it uses the first plain ``name:password`` entry of ``WARMSERVE_DASH_USERS`` (such a user is a
viewer), so a deployment adds a probe user there, from the same secret the dashboard reads.
"""

from __future__ import annotations

import base64
import http.client
import os
import sys

HEALTH_PATH = "/api/v1/health"
LIVE_STATUSES = frozenset({200, 401, 503})
TIMEOUT_S = 3.0


def probe_credentials(users: str) -> str | None:
    """The first ``name:password`` entry of a WARMSERVE_DASH_USERS value (hashed ``name:role:hash`` ones are skipped)."""
    for entry in users.split(","):
        name, sep, password = entry.strip().partition(":")
        if sep and name and password and ":" not in password:
            return f"{name}:{password}"
    return None


def health_status(port: int, credentials: str | None, timeout_s: float = TIMEOUT_S) -> int:
    """The HTTP status of GET /api/v1/health on this container's dashboard (OSError when nothing answers)."""
    headers = {"Host": "localhost"}
    if credentials:
        headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode("ascii")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        connection.request("GET", HEALTH_PATH, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def healthy(mode: str, status: int) -> bool:
    return status == 200 if mode == "ready" else status in LIVE_STATUSES


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("ready", "live"):
        print("usage: python deploy/healthcheck.py ready|live", file=sys.stderr)
        return 2
    mode = argv[0]
    port = int(os.environ.get("WARMSERVE_DASH_PORT") or 8050)
    try:
        status = health_status(port, probe_credentials(os.environ.get("WARMSERVE_DASH_USERS", "")))
    except (OSError, http.client.HTTPException) as exc:
        print(f"{mode}: no answer from the dashboard on port {port}: {exc}", file=sys.stderr)
        return 1
    print(f"{mode}: GET {HEALTH_PATH} -> {status}")
    return 0 if healthy(mode, status) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
