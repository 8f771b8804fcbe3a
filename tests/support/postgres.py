"""A throwaway PostgreSQL cluster for tests, and ``history_db``: every history store test on SQLite AND PostgreSQL.

``postgres_cluster`` (session) runs Debian's ``postgresql`` binaries
(``/usr/lib/postgresql/<version>/bin``: initdb, pg_ctl; ``./run.sh test``
installs the package) on a free port of 127.0.0.1, its data and socket in a
private temp folder, trust authentication for that address only, and stops it
(``pg_ctl stop -m fast``) and deletes the folder at the end. PostgreSQL refuses
to run as root, and CI runs the tests as root: then the cluster runs as the
unprivileged ``nobody`` (``runuser``), which owns the folder. A test that needs
it FAILS, never skips, when the binaries are missing.

``history_db`` (params ``sqlite``, ``postgresql``) is where a test's history
lives: a fresh SQLite file, or a fresh database of its own in the cluster
(dropped after the test).

pytest-postgresql was not used: it runs pg_ctl as the current user, which is
root in CI, and it does not drop privileges.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.helpers import free_port

START_TIMEOUT_S = 60
#: the user the cluster runs as when the tests run as root
UNPRIVILEGED_USER = "nobody"
ADMIN = "postgres"


@dataclass
class PostgresCluster:
    bin_dir: Path
    folder: Path
    port: int
    as_user: list[str]

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = ADMIN) -> str:
        return f"postgresql://{ADMIN}@127.0.0.1:{self.port}/{database}"

    def admin(self):
        """An autocommit psycopg connection to the ``postgres`` database (CREATE/DROP DATABASE)."""
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user=ADMIN, dbname=ADMIN, autocommit=True)

    def run(self, tool: str, *args: str, timeout: float = START_TIMEOUT_S) -> subprocess.CompletedProcess:
        return subprocess.run([*self.as_user, str(self.bin_dir / tool), *args], capture_output=True, text=True,
                              timeout=timeout, cwd=self.folder)

    def log_text(self) -> str:
        path = self.folder / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""


def postgres_bin_dir() -> Path:
    """The newest installed PostgreSQL's bin folder (``WARMSERVE_TEST_PG_BIN`` overrides it); fails the test if none."""
    explicit = os.environ.get("WARMSERVE_TEST_PG_BIN")
    def version(bin_dir: str) -> int:
        name = Path(bin_dir).parent.name
        return int(name) if name.isdigit() else 0

    candidates = [explicit] if explicit else sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version)
    for candidate in reversed(candidates):
        if (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    pytest.fail("PostgreSQL is not installed: the history tests run a real PostgreSQL cluster. Install Debian's "
                "package (apt-get install -y postgresql; ./run.sh test does it), or set WARMSERVE_TEST_PG_BIN.")


def start_postgres() -> PostgresCluster:
    """initdb a private cluster and start it on a free port; return once it accepts connections."""
    bin_dir = postgres_bin_dir()
    folder = Path(tempfile.mkdtemp(prefix="warmserve-pg-"))
    try:
        return _start_in(bin_dir, folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _start_in(bin_dir: Path, folder: Path) -> PostgresCluster:
    as_user: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.fail("The tests run as root and PostgreSQL refuses root, but runuser (util-linux) is missing.")
        as_user = ["runuser", "-u", UNPRIVILEGED_USER, "--"]
        shutil.chown(folder, user=UNPRIVILEGED_USER)
    folder.chmod(0o700)
    cluster = PostgresCluster(bin_dir, folder, 0, as_user)
    done = cluster.run("initdb", "-D", str(cluster.data_dir), "-U", ADMIN, "--auth=trust", "-E", "UTF8",
                       "--locale=C", "--no-sync")
    if done.returncode:
        raise AssertionError(f"initdb failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    for _attempt in range(3):  # another test may take the free port before PostgreSQL binds it
        cluster.port = free_port()
        options = (f"-p {cluster.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={folder}"
                   " -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        done = cluster.run("pg_ctl", "start", "-w", "-t", str(START_TIMEOUT_S), "-D", str(cluster.data_dir),
                           "-l", str(folder / "postgres.log"), "-o", options, timeout=START_TIMEOUT_S + 10)
        if done.returncode == 0:
            return cluster
    raise AssertionError(f"PostgreSQL did not start:\n{done.stderr[-2000:]}\n{cluster.log_text()[-2000:]}")


def stop_postgres(cluster: PostgresCluster) -> None:
    cluster.run("pg_ctl", "stop", "-m", "fast", "-w", "-D", str(cluster.data_dir))
    shutil.rmtree(cluster.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_cluster():
    cluster = start_postgres()
    yield cluster
    stop_postgres(cluster)


_database_numbers = itertools.count(1)


@pytest.fixture
def postgres_url(postgres_cluster):
    """The URL of a fresh, empty database in the session's cluster (dropped after the test)."""
    name = f"history_{os.getpid()}_{next(_database_numbers)}"
    with postgres_cluster.admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres_cluster.url(name)
    with postgres_cluster.admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def history_db(request, tmp_path):
    """Where this test's history lives: a fresh SQLite file, or a fresh PostgreSQL database (a URL)."""
    if request.param == "sqlite":
        return tmp_path / "history.sqlite3"
    return request.getfixturevalue("postgres_url")
