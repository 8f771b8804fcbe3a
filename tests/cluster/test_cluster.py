"""The cluster on this machine (topology.py): what a team's users see through the dashboard replicas' HTTP API.

Requests through either replica are answered and land in one shared history (PostgreSQL); the monolith cap
(Redis) holds across replicas; then, destructive, in this order: a worker SIGKILLed in the middle of a burst
loses no request (the broker re-sends its in-flight work to the other worker); the broker SIGKILLed and
restarted on its address gets everything back with nothing else restarted; a replica SIGKILLed leaves the
other serving. Each test asserts what a user gets back (status, classes, history rows, the monolith's panels).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.cluster.topology import MONOLITH_QUEUE, WEB_HOSTS, WORKER_HOSTS, Cluster
from tests.process.test_kept_uploads_postgres import classify_body
from tests.support.helpers import CAT_CLASSES, wait_for

#: each test's bound (pytest-timeout): the first includes starting the cluster (a fresh machine converts the model to
#: LiteRT once), the last stopping it
pytestmark = [pytest.mark.slow]
STARTS_THE_CLUSTER_S, ONE_TEST_S = 420, 180

ESPRESSO = 967
HTTP_TIMEOUT_S = 30


def classify(url: str, png: bytes, name: str) -> tuple[int, dict]:
    """POST /api/v1/classify with the image as the multipart field ``image``: (status, JSON)."""
    reply = requests.post(url + "/api/v1/classify", files={"image": (name, png, "image/png")}, timeout=HTTP_TIMEOUT_S)
    return reply.status_code, reply.json()


def history_names(url: str, kind: str = "service") -> set[str]:
    reply = requests.get(url + "/api/v1/history", params={"limit": 1000, "kind": kind}, timeout=HTTP_TIMEOUT_S)
    assert reply.status_code == 200, reply.text[:500]
    return {record["image"] for record in reply.json()["records"]}


def is_correct(status: int, body: dict, expected: range | int) -> bool:
    """200 and the right top class: one of the cat classes for chelsea, espresso for coffee."""
    if status != 200:
        return False
    top = body["predictions"][0]["index"]
    return top in expected if isinstance(expected, range) else top == expected


@pytest.fixture(scope="module")
def photos(chelsea_png, coffee_png) -> list[tuple[bytes, range | int]]:
    return [(chelsea_png, CAT_CLASSES), (coffee_png, ESPRESSO)]


def burst(cluster: Cluster, photos, tag: str, count: int, threads: int = 16, during=None) -> list[tuple[str, int, dict]]:
    """``count`` classify requests, ``threads`` at once, alternating replicas and photos; ``during()`` runs meanwhile.

    Returns (name, status, body) per request, in order; a request that raised is (name, 0, {"error": repr}).
    """
    def one(i: int):
        host, png = WEB_HOSTS[i % 2], photos[(i // 2) % 2][0]
        name = f"{tag}-{i}.png"
        try:
            return (name, *classify(cluster.url(host), png, name))
        except requests.RequestException as error:
            return name, 0, {"error": repr(error)}

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(one, i) for i in range(count)]
        if during is not None:
            during(futures)
        return [future.result(timeout=120) for future in futures]


def expected_of(photos, i: int):
    return photos[(i // 2) % 2][1]


def wrong_answers(photos, results) -> list[tuple[str, int, dict]]:
    return [(name, status, body) for i, (name, status, body) in enumerate(results)
            if not is_correct(status, body, expected_of(photos, i))]


# -- a. two replicas, one history ------------------------------------------------------------------------------


@pytest.mark.timeout(STARTS_THE_CLUSTER_S)
def test_requests_through_either_replica_are_answered_and_land_in_one_shared_history(cluster, photos):
    tag = f"shared-{uuid.uuid4().hex[:6]}"
    results = burst(cluster, photos, tag, 12, threads=4)
    assert wrong_answers(photos, results) == []
    names = {name for name, _status, _body in results}
    for host in WEB_HOSTS:  # every request, whichever replica took it, read back through each replica
        wait_for(lambda host=host: names <= history_names(cluster.url(host)), 20,
                 f"all 12 requests in the history read through {host}")


# -- e. the monolith cap across replicas ----------------------------------------------------------------------


class MonolithAsk:
    """A click on "Run the monolith" in one replica's page: Dash's background callback, polled as the browser does."""

    def __init__(self, url: str, sha256: str):
        self.url = url
        dependencies = requests.get(url + "/_dash-dependencies", timeout=HTTP_TIMEOUT_S).json()
        monolith = next(d for d in dependencies if "monolith-result.children" in d["output"])
        values = {("monolith-button", "n_clicks"): 1, ("monolith-image", "value"): sha256}
        entries = {kind: [{"id": d["id"], "property": d["property"], "value": values.get((d["id"], d["property"]))}
                          for d in monolith[kind]] for kind in ("inputs", "state")}
        outputs = [{"id": part.split(".")[0], "property": part.split(".")[1]}
                   for part in monolith["output"].strip(".").split("...")]
        self.body = {"output": monolith["output"], "outputs": outputs, **entries,
                     "changedPropIds": ["monolith-button.n_clicks"]}
        self.progress: list[str] = []
        self.response: dict | None = None
        started = requests.post(url + "/_dash-update-component", json=self.body, timeout=HTTP_TIMEOUT_S)
        assert started.status_code == 200, started.text[:500]
        self.handles = started.json()

    def poll(self) -> dict | None:
        """One poll: records the progress text shown, returns the callback's response once there is one."""
        if self.response is not None:
            return self.response
        reply = requests.post(self.url + "/_dash-update-component", json=self.body, timeout=HTTP_TIMEOUT_S,
                              params={"cacheKey": self.handles["cacheKey"], "job": self.handles["job"]})
        assert reply.status_code == 200, reply.text[:500]
        answer = reply.json()
        if "progress" in answer:
            text = json.dumps(answer["progress"])
            if not self.progress or self.progress[-1] != text:
                self.progress.append(text)
        if "response" in answer:
            self.response = answer["response"]
        return self.response

    def shows(self, words: str) -> bool:
        self.poll()
        return bool(self.progress) and words in self.progress[-1]

    @property
    def panel(self) -> str:
        return json.dumps(self.response["monolith-result"]["children"])


@pytest.mark.timeout(ONE_TEST_S)
def test_the_monolith_cap_holds_across_replicas_and_every_ask_gets_a_clear_answer(cluster, chelsea_png):
    """Cap 1 at once and 1 waiting, in Redis: one run through web-a, a second through web-b waits in line,
    a third (web-a) is refused at once; the history's monolith rows (wall clocks ending at their record
    times) never overlap."""
    reply = requests.post(cluster.url("web-a") + "/_dash-update-component", timeout=HTTP_TIMEOUT_S,
                          json=classify_body(cluster.url("web-a"), chelsea_png, "monolith-cat.png"))
    assert reply.status_code == 200, reply.text[:500]  # dropped on web-a's page: kept in the shared database
    sha256 = hashlib.sha256(chelsea_png).hexdigest()

    first = MonolithAsk(cluster.url("web-a"), sha256)
    wait_for(lambda: first.shows("Running the monolith"), 60, "the first run to start")
    second = MonolithAsk(cluster.url("web-b"), sha256)
    wait_for(lambda: second.shows("Waiting for a free monolith slot: 1st in line"), 60,
             "the second ask, through the other replica, to wait in line")
    assert not first.poll() and first.shows("Running the monolith"), "still running while the second waits"
    third = MonolithAsk(cluster.url("web-a"), sha256)
    refused = wait_for(third.poll, 60, "the third ask's answer")
    assert f"{MONOLITH_QUEUE} monolith run is already waiting; try again in a minute." in json.dumps(refused)

    for ask in (first, second):
        wait_for(ask.poll, 120, "a monolith run to finish")
        assert "Egyptian cat" in ask.panel and "failed" not in ask.panel, ask.panel

    reply = requests.get(cluster.url("web-b") + "/api/v1/history", params={"limit": 10, "kind": "monolith"},
                         timeout=HTTP_TIMEOUT_S)
    runs = sorted((r["ts"] - r["latency_ms"] / 1000, r["ts"]) for r in reply.json()["records"])
    assert len(runs) == 2, runs  # the refused ask is not a run and is not recorded
    (_start_1, end_1), (start_2, _end_2) = runs
    # A record's time is taken just after its run freed the slot, so the earlier run's computed end is late by
    # that (milliseconds); two runs at once would overlap by most of a run (seconds of TensorFlow import).
    assert start_2 > end_1 - 0.5, f"two monolith runs overlapped: {runs}"


# -- b. a worker killed mid-burst ------------------------------------------------------------------------------


@pytest.mark.timeout(ONE_TEST_S)
def test_killing_a_worker_in_the_middle_of_a_burst_loses_no_request(cluster, photos):
    victim = cluster.children["gpu-a"]
    survivor = cluster.children["gpu-b"]
    before = cluster.broker_info()

    def kill_when_busy(_futures) -> None:
        def victim_busy() -> bool:
            info = cluster.broker_info() or {"workers": []}
            return any(w["pid"] == victim.pid and w["in_flight"] > 0 for w in info["workers"])

        wait_for(victim_busy, 30, "the worker on gpu-a to hold requests in flight")
        victim.kill()  # SIGKILL: its in-flight requests get no reply from it

    results = burst(cluster, photos, f"burst-{uuid.uuid4().hex[:6]}", 64, threads=16, during=kill_when_busy)
    assert wrong_answers(photos, results) == []  # every request of the burst: 200 and the right class
    after = cluster.broker_info()
    assert [w["pid"] for w in after["workers"]] == [survivor.pid]
    assert after["workers_lost"] == before["workers_lost"] + 1
    assert after["retried"] > before["retried"], "the killed worker's in-flight requests were re-sent"
    assert victim.process.returncode == -9


# -- d. the broker killed and restarted ----------------------------------------------------------------------


@pytest.mark.timeout(ONE_TEST_S)
def test_killing_and_restarting_the_broker_recovers_with_nothing_else_restarted(cluster, photos):
    others = {name: child.pid for name, child in cluster.children.items()
              if name != "broker" and child.process.poll() is None}
    workers = sorted(cluster.children[h].pid for h in WORKER_HOSTS if cluster.children[h].process.poll() is None)
    cluster.children["broker"].kill()
    status, body = classify(cluster.url("web-a"), photos[0][0], "while-the-broker-is-down.png")
    assert status == 503 and body["error"]["code"] == "unavailable", (status, body)  # said plainly

    cluster.start_broker().wait_for(r"Broker ready on", 30)
    wait_for(lambda: cluster.worker_pids() == workers, 30, "the workers to register again by themselves")
    for host in WEB_HOSTS:  # each replica's client finds the new broker on its own, within a bounded wait
        wait_for(lambda host=host: is_correct(*classify(cluster.url(host), photos[0][0], "after-restart.png"),
                                              CAT_CLASSES), 30, f"{host} to be answered again")
    results = burst(cluster, photos, f"after-restart-{uuid.uuid4().hex[:6]}", 16, threads=8)
    assert wrong_answers(photos, results) == []
    assert {name: cluster.children[name].pid for name in others} == others
    assert all(cluster.children[name].process.poll() is None for name in others), "nothing else restarted or died"


# -- c. a replica killed --------------------------------------------------------------------------------------


@pytest.mark.timeout(ONE_TEST_S)
def test_killing_one_dashboard_replica_leaves_the_other_serving(cluster, photos):
    names = history_names(cluster.url("web-a"))
    cluster.children["web-a"].kill()
    with pytest.raises(requests.ConnectionError):
        requests.get(cluster.url("web-a") + "/api/v1/health", timeout=5)

    survivor = cluster.url("web-b")
    # its health reports its status poller's latest check (every 500 ms here), which may predate the broker's restart
    wait_for(lambda: requests.get(survivor + "/api/v1/health", timeout=HTTP_TIMEOUT_S).json()["status"] == "ready", 20,
             "the survivor's health to say ready")
    tag = f"survivor-{uuid.uuid4().hex[:6]}"
    answers = [classify(survivor, png, f"{tag}-{i}.png") for i, (png, _expected) in enumerate(photos * 3)]
    assert all(is_correct(status, body, expected) for (status, body), (_png, expected) in zip(answers, photos * 3))
    new = {f"{tag}-{i}.png" for i in range(len(answers))}
    wait_for(lambda: names | new <= history_names(survivor), 20,
             "the survivor's history to hold what was asked through the dead replica and through itself")

