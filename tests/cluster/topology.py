"""The cluster the tests in this folder run: six "hosts" (network namespaces) on a private bridge, real services on each.

    db      PostgreSQL (as ``nobody``; port 5432) and redis-server (6379)
    broker  python -m model_backend broker (frontend 5576 for clients, backend 5577 for workers), CURVE
    gpu-a   python -m model_backend serve --connect tcp://broker:5577 (the default model on LiteRT), CURVE
    gpu-b   the same
    web-a   python -m dashboard serve (8050) and python -m dashboard jobs-worker: --db postgresql://postgres@db/...,
            --redis redis://db:6379/0, --backend tcp://broker:5576, CURVE
    web-b   the same

Keys are made as the README tells an operator: ``keys init`` on the broker's host, then ``keys add NAME``
for each other host, whose ``KEYS/share/NAME`` folder is its ``--keys-dir`` (each worker and dashboard
has a pair of its own). The test process is a client too (``runner``): it asks the broker which workers
are registered. Everything addresses the others by host name (each namespace's /etc/hosts); the test
process, outside, uses addresses.

Every process logs to its own file under the cluster's folder; :meth:`Cluster.logs_tail` gives the end of
each, for a failing test's report. :meth:`Cluster.close` stops the services (SIGTERM, then SIGKILL) and
the network (tests/support/netns.py), whatever state the tests left them in.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from model_backend import keys_command
from model_backend.client import BackendClient
from model_backend.errors import BackendError
from model_backend.settings import ClientSettings
from tests.support.helpers import wait_for
from tests.support.netns import VirtualNetwork, pid_alive, require_root_and_ip, wait_reachable
from tests.support.postgres import ADMIN, UNPRIVILEGED_USER, PostgresCluster, postgres_bin_dir
from tools import processes
from tools.processes import Child

HOSTS = ("db", "broker", "gpu-a", "gpu-b", "web-a", "web-b")
WORKER_HOSTS = ("gpu-a", "gpu-b")
WEB_HOSTS = ("web-a", "web-b")
FRONTEND_PORT, BACKEND_PORT, DASHBOARD_PORT, POSTGRES_PORT, REDIS_PORT = 5576, 5577, 8050, 5432, 6379
DATABASE = "warmserve"
#: broker and worker heartbeats: a killed worker is out of rotation (its work re-sent) after 3 of them
HEARTBEAT_MS = 500
#: the monolith cap the dashboards and jobs workers share through Redis: 1 at once, 1 more may wait
MONOLITH_CONCURRENCY, MONOLITH_QUEUE = 1, 1
START_TIMEOUT_S = 240  # a fresh machine converts the model to LiteRT once (TensorFlow) before the workers are ready
PYTHON = sys.executable
#: PostgreSQL's folder (owned by nobody, outside pytest's root-only tmp dirs): PREFIX<pid>-<random>
PG_FOLDER_PREFIX = "warmserve-cluster-pg-"


@dataclass
class Cluster:
    net: VirtualNetwork
    folder: Path
    keys: Path
    pg_folder: Path
    children: dict[str, Child]
    pg: PostgresCluster | None = None

    # -- addresses ---------------------------------------------------------------------

    def url(self, web_host: str) -> str:
        """The dashboard replica on ``web_host``, as the test process reaches it."""
        return f"http://{self.net.address(web_host)}:{DASHBOARD_PORT}"

    @property
    def frontend(self) -> str:
        return f"tcp://{self.net.address('broker')}:{FRONTEND_PORT}"

    def client(self, **settings) -> BackendClient:
        """A ZeroMQ client of the broker from the test process, with the ``runner`` client keys."""
        settings = {"connect_timeout_ms": 1000, "timeout_ms": 5000, "retries": 0, **settings}
        return BackendClient(ClientSettings(address=self.frontend, keys_dir=self.keys / "share" / "runner", **settings))

    def broker_info(self) -> dict | None:
        """The broker's info (its workers, counters), or None while it does not answer."""
        try:
            with self.client() as probe:
                return probe.info()
        except BackendError:
            return None

    def worker_pids(self) -> list[int]:
        info = self.broker_info()
        return sorted(worker["pid"] for worker in info["workers"]) if info else []

    # -- processes ---------------------------------------------------------------------

    def start(self, host: str, name: str, *args: str, env: dict[str, str] | None = None) -> Child:
        """``python ARGS`` on ``host`` as ``name`` (log: FOLDER/NAME.log, appended across restarts)."""
        child = self.net.start_process(host, name, [PYTHON, *args], self.folder / f"{name}.log",
                                       env={**processes.tool_env(), **(env or {})})
        self.children[name] = child
        return child

    def start_broker(self) -> Child:
        broker = self.net.address("broker")
        return self.start("broker", "broker", "-m", "model_backend", "broker",
                          "--frontend", f"tcp://{broker}:{FRONTEND_PORT}", "--backend", f"tcp://{broker}:{BACKEND_PORT}",
                          "--heartbeat-ms", str(HEARTBEAT_MS), "--keys-dir", str(self.keys))

    def start_worker(self, host: str) -> Child:
        return self.start(host, host, "-m", "model_backend", "serve", "--connect", f"tcp://broker:{BACKEND_PORT}",
                          "--heartbeat-ms", str(HEARTBEAT_MS), "--max-batch", "8", "--intra-op-threads", "1",
                          "--keys-dir", str(self.keys / "share" / host), "--log-level", "INFO")

    def web_env(self, host: str) -> dict[str, str]:
        """What a dashboard replica and its jobs worker share: the engines, the broker, the cap, the keys."""
        return {"WARMSERVE_DASH_DB": f"postgresql://{ADMIN}@db:{POSTGRES_PORT}/{DATABASE}",
                "WARMSERVE_DASH_REDIS": f"redis://db:{REDIS_PORT}/0",
                "WARMSERVE_DASH_BACKEND": f"tcp://broker:{FRONTEND_PORT}",
                "WARMSERVE_DASH_KEYS_DIR": str(self.keys / "share" / host),
                "WARMSERVE_DASH_MONOLITH_CONCURRENCY": str(MONOLITH_CONCURRENCY),
                "WARMSERVE_DASH_MONOLITH_QUEUE": str(MONOLITH_QUEUE),
                "WARMSERVE_DASH_DATA_DIR": str(self.folder / f"{host}-data")}

    def start_dashboard(self, host: str) -> Child:
        return self.start(host, host, "-m", "dashboard", "serve", "--host", self.net.address(host),
                          "--port", str(DASHBOARD_PORT), env={**self.web_env(host), "WARMSERVE_DASH_STATUS_INTERVAL_MS": "500"})

    def start_jobs_worker(self, host: str) -> Child:
        # Its own data folder: a jobs worker shares nothing on disk with its replica (as on another machine).
        # Default processes (the cap, its line, and one more), so an ask beyond the line is refused at once.
        return self.start(host, f"jobs-{host}", "-m", "dashboard", "jobs-worker",
                          "--data-dir", str(self.folder / f"jobs-{host}-data"), env=self.web_env(host))

    # -- reports and teardown ------------------------------------------------------------

    def logs_tail(self, chars: int = 2500) -> str:
        """The end of every process's log (and PostgreSQL's, Redis's), for a failing test's report."""
        parts = []
        for path in sorted(self.folder.glob("*.log")) + sorted(self.pg_folder.glob("*.log")):
            parts.append(f"----- {path.name} -----\n{processes.tail(path, chars)}")
        return "\n".join(parts)

    def close(self) -> None:
        for name, child in self.children.items():
            if child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + 15
        for child in self.children.values():
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except processes.subprocess.TimeoutExpired:
                child.process.kill()
        if self.pg is not None:
            self.pg.run("pg_ctl", "stop", "-m", "immediate", "-w", "-D", str(self.pg.data_dir), timeout=30)
        self.net.close()  # SIGKILLs anything left in the namespaces
        for log in self.pg_folder.rglob("*.log"):  # kept with the others for a failed run's artifacts
            shutil.copy2(log, self.folder / f"db-{log.name}")
        shutil.rmtree(self.pg_folder, ignore_errors=True)


def make_keys(folder: Path) -> Path:
    """``keys init`` (the broker's pair), then a worker pair per GPU host and a client pair per web host and the runner."""
    keys = folder / "KEYS"
    keys_command.init_keys(keys)
    for host in WORKER_HOSTS:
        keys_command.add_key(keys, host, "worker")
    for host in (*WEB_HOSTS, "runner"):
        keys_command.add_key(keys, host, "client")
    return keys


def start_postgres(net: VirtualNetwork, folder: Path) -> PostgresCluster:
    """A throwaway PostgreSQL on host ``db`` (port 5432 of its address, trust from the cluster's /24), running as
    ``nobody`` (PostgreSQL refuses root); tests/support/postgres.py does the same on 127.0.0.1 for the other tests."""
    as_user = ["ip", "netns", "exec", net.namespace("db"), "runuser", "-u", UNPRIVILEGED_USER, "--"]
    shutil.chown(folder, user=UNPRIVILEGED_USER)
    folder.chmod(0o700)
    pg = PostgresCluster(postgres_bin_dir(), folder, POSTGRES_PORT, as_user)
    done = pg.run("initdb", "-D", str(pg.data_dir), "-U", ADMIN, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
    assert done.returncode == 0, f"initdb failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    with open(pg.data_dir / "pg_hba.conf", "a") as hba:
        hba.write(f"host all all {net.subnet} trust\n")
    options = (f"-p {POSTGRES_PORT} -c listen_addresses={net.address('db')} -c unix_socket_directories={folder}"
               " -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off")
    done = pg.run("pg_ctl", "start", "-w", "-t", "60", "-D", str(pg.data_dir), "-l", str(folder / "postgres.log"),
                  "-o", options, timeout=70)
    assert done.returncode == 0, f"PostgreSQL did not start:\n{done.stderr[-2000:]}\n{pg.log_text()[-2000:]}"
    import psycopg

    with psycopg.connect(host=net.address("db"), port=POSTGRES_PORT, user=ADMIN, dbname=ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    return pg


def start_cluster(folder: Path) -> Cluster:
    """Build the network and start every service, in parallel where the order allows; return once all are ready.

    Processes are started from this (the main) thread: their parent-death signal is tied to the starting thread.
    """
    require_root_and_ip()
    keys = make_keys(folder)
    net = VirtualNetwork(HOSTS).start()
    remove_stale_folders()
    cluster = Cluster(net, folder, keys, Path(tempfile.mkdtemp(prefix=f"{PG_FOLDER_PREFIX}{os.getpid()}-")), {})
    try:
        redis_dir = cluster.pg_folder / "redis"
        redis_dir.mkdir()
        cluster.children["redis"] = net.start_process(
            "db", "redis", [shutil.which("redis-server") or _missing("redis-server"), "--port", str(REDIS_PORT),
                            "--bind", net.address("db"), "--protected-mode", "no", "--save", "", "--appendonly", "no",
                            "--dir", str(redis_dir)], folder / "redis.log")
        cluster.start_broker()
        for host in WORKER_HOSTS:
            cluster.start_worker(host)
        cluster.pg = start_postgres(net, cluster.pg_folder)  # initdb takes seconds: the others load meanwhile
        wait_reachable(net.address("db"), REDIS_PORT, 20)
        for host in WEB_HOSTS:
            cluster.start_dashboard(host)
            cluster.start_jobs_worker(host)
        cluster.children["broker"].wait_for(processes.BROKER_READY, 30)
        for host in WEB_HOSTS:
            cluster.children[host].wait_for(processes.DASHBOARD_READY, 60)
            cluster.children[f"jobs-{host}"].wait_for(r" ready\.", 60)
        workers = sorted(cluster.children[host].pid for host in WORKER_HOSTS)
        wait_for(lambda: cluster.worker_pids() == workers or any(cluster.children[h].process.poll() is not None
                                                                  for h in WORKER_HOSTS),
                 START_TIMEOUT_S, "both workers to register at the broker")
        assert cluster.worker_pids() == workers, "a worker exited before it registered:\n" + cluster.logs_tail()
    except BaseException as error:
        report = cluster.logs_tail()
        cluster.close()
        if isinstance(error, (AssertionError, processes.ProcessError)):
            raise AssertionError(f"the cluster did not start: {error}\n{report}") from error
        raise
    return cluster


def remove_stale_folders() -> None:
    """Delete PostgreSQL folders of earlier runs whose pid is dead (a run killed with SIGKILL cannot clean up);
    their namespaces, and the server still running in one, go in tests/support/netns.py's remove_stale."""
    for folder in Path(tempfile.gettempdir()).glob(f"{PG_FOLDER_PREFIX}*-*"):
        pid = folder.name[len(PG_FOLDER_PREFIX):].split("-")[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _missing(binary: str) -> str:
    raise AssertionError(f"{binary} is not installed: the cluster test runs a real one "
                         "(apt-get install -y redis-server; ./run.sh test does it).")
