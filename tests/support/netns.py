"""A private virtual network for one test run: one Linux network namespace per "host", all on one bridge.

The cluster test (tests/cluster/) runs the broker, the workers, the dashboards,
PostgreSQL and Redis as if on separate machines, on this one::

    root namespace (the test process)     bridge wsbr<pid>  10.A.B.1/24
      ├── veth ── namespace ws<pid>-db      eth0 10.A.B.10   (its own lo, ports, routes)
      ├── veth ── namespace ws<pid>-broker  eth0 10.A.B.11
      └── ...

Each host has its own loopback and its own ports (every service can use its
usual port), and reaches the others only through its own address on the
bridge, as across a LAN. The test process stays in the root namespace and
reaches every host directly by its address (HTTP, ZeroMQ, SQL). ``/24`` is a
free ``10.A.B.0/24`` picked at random and checked against every route and
address of the machine. Each namespace also gets an ``/etc/hosts`` of its own
naming every host (``ip netns exec`` mounts ``/etc/netns/NAME/hosts`` over
``/etc/hosts``), so a dashboard can be given ``postgresql://postgres@db/...``.

Names carry the test process's pid and stay within IFNAMSIZ (15 characters):
bridge ``wsbr<pid>``, veth ``wsv<pid>h<i>`` (its peer is ``eth0`` inside the
host), namespaces ``ws<pid>-<host>``. :meth:`VirtualNetwork.close` (also run
when :meth:`~VirtualNetwork.start` fails half-way, and by the context manager
on any exception or KeyboardInterrupt) SIGKILLs every process this network
started that still runs and anything else left inside its namespaces (``ip
netns pids``: a daemon such as PostgreSQL), then deletes the links, the
namespaces, the bridge and the hosts files; :func:`remove_stale` does the same
for what earlier runs whose pid is dead left behind (a run killed with SIGKILL
cannot clean up after itself).

:meth:`VirtualNetwork.start_process` runs a command inside a host
(``ip netns exec NAME ...``, which execs it: the Popen's pid is the command's,
so the test can SIGKILL or SIGTERM it) with its output in a log file, as a
:class:`tools.processes.Child` (``wait_for`` a ready line, ``stop``, ``kill``).

It needs root and iproute2's ``ip``: :func:`require_root_and_ip` FAILS the
test (never skips) with what is missing, because CI runs the tests as root.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from tools import processes
from tools.processes import Child

#: every name this module creates starts with this
PREFIX = "ws"
NETNS_DIR = Path("/etc/netns")
IFNAMSIZ = 15
#: host addresses are .10, .11, ... in the run's /24; the bridge (the test process) is .1
FIRST_HOST = 10
IP_TIMEOUT_S = 20

_STALE = re.compile(rf"^{PREFIX}(?:br|v)?(\d+)(?:h\d+)?$|^{PREFIX}(\d+)-[\w-]+$")


class NetworkError(RuntimeError):
    """An ``ip`` command failed while building or changing the virtual network (the message has its stderr)."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``ip ARGS``; NetworkError with its stderr when it fails and ``check`` is set."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT_S)
    if check and done.returncode:
        raise NetworkError(f"ip {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def require_root_and_ip() -> None:
    """Fail the calling test, saying what it needs, unless this process is root and ``ip`` (iproute2) is there."""
    missing = []
    if os.geteuid() != 0:
        missing.append(f"root (running as uid {os.geteuid()}): network namespaces, veth pairs and bridges need it")
    if shutil.which("ip") is None:
        missing.append("the `ip` command (Debian's iproute2 package)")
    if missing:
        pytest.fail("The cluster test builds a private virtual network (ip netns, veth, a bridge) and needs "
                    + " and ".join(missing) + ". Run it as root, as CI does (./run.sh test).", pytrace=False)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (names here carry the pid of the run that made them)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale() -> list[str]:
    """Delete namespaces, links and hosts files of earlier runs whose pid is no longer alive; return their names."""
    removed = []
    namespaces = [line.split()[0] for line in ip("netns", "list").stdout.splitlines() if line.strip()]
    links = [entry["ifname"] for entry in json.loads(ip("-j", "link", "show").stdout or "[]")]
    folders = [p.name for p in NETNS_DIR.iterdir()] if NETNS_DIR.is_dir() else []
    for name in {*namespaces, *links, *folders}:
        match = _STALE.match(name.split("@")[0])
        if not match or pid_alive(int(match.group(1) or match.group(2))):
            continue
        if name in namespaces:
            kill_everything_in(name)
            ip("netns", "delete", name, check=False)
        if name in links:
            ip("link", "delete", name, check=False)
        if name in folders:
            shutil.rmtree(NETNS_DIR / name, ignore_errors=True)
        removed.append(name)
    return removed


def kill_everything_in(namespace: str) -> None:
    """SIGKILL every process still inside ``namespace`` (daemons such as PostgreSQL's, Celery's pool, monoliths)."""
    for _attempt in range(5):
        pids = [int(pid) for pid in ip("netns", "pids", namespace, check=False).stdout.split() if pid.isdigit()]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


def used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network this machine routes or has an address in (all routing tables)."""
    networks = []
    for entry in json.loads(ip("-j", "-4", "route", "show", "table", "all").stdout or "[]"):
        dst = entry.get("dst", "")
        if dst and dst != "default" and re.match(r"^[\d.]+(/\d+)?$", dst):
            networks.append(ipaddress.ip_network(dst, strict=False))
    for link in json.loads(ip("-j", "-4", "addr", "show").stdout or "[]"):
        for info in link.get("addr_info", []):
            networks.append(ipaddress.ip_network(f"{info['local']}/{info['prefixlen']}", strict=False))
    return networks


def free_subnet(rng: random.Random | None = None, attempts: int = 200) -> ipaddress.IPv4Network:
    """A random ``10.A.B.0/24`` that overlaps no route or address of this machine."""
    rng = rng or random.Random()
    used = used_networks()
    for _ in range(attempts):
        candidate = ipaddress.ip_network(f"10.{rng.randrange(1, 255)}.{rng.randrange(0, 256)}.0/24")
        if not any(candidate.overlaps(network) for network in used):
            return candidate
    raise NetworkError(f"no free 10.x.y.0/24 found in {attempts} tries; routes and addresses in use: {used}")


class VirtualNetwork:
    """Hosts (network namespaces) on one bridge, for one test run; a context manager that always cleans up."""

    def __init__(self, hosts: Sequence[str], subnet: ipaddress.IPv4Network | None = None) -> None:
        if len(set(hosts)) != len(hosts) or not all(re.fullmatch(r"[a-z][a-z0-9-]{0,15}", h) for h in hosts):
            raise ValueError(f"Expected distinct host names of lower-case letters, digits and '-'. Received: {hosts}")
        self.hosts = tuple(hosts)
        self.tag = str(os.getpid())
        self.bridge = f"{PREFIX}br{self.tag}"
        self.subnet = subnet
        self.children: list[Child] = []
        self._made_namespaces: list[str] = []
        self._made_bridge = False
        for name in (self.bridge, *(self.veth(h) for h in self.hosts)):
            assert len(name) <= IFNAMSIZ, name

    # -- names and addresses -------------------------------------------------------

    def namespace(self, host: str) -> str:
        return f"{PREFIX}{self.tag}-{host}"

    def veth(self, host: str) -> str:
        """The root-namespace end of ``host``'s link (its other end is ``eth0`` in the host)."""
        return f"{PREFIX}v{self.tag}h{self.hosts.index(host)}"

    def address(self, host: str) -> str:
        """``host``'s IPv4 address (the test process's own is :attr:`gateway`)."""
        return str(self.subnet[FIRST_HOST + self.hosts.index(host)])

    @property
    def gateway(self) -> str:
        return str(self.subnet[1])

    # -- building and tearing down -------------------------------------------------

    def start(self) -> VirtualNetwork:
        """Build the bridge and one namespace per host; on any failure, undo what was built and raise."""
        try:
            remove_stale()
            self.subnet = self.subnet or free_subnet()
            ip("link", "add", self.bridge, "type", "bridge")
            self._made_bridge = True
            ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
            ip("link", "set", self.bridge, "up")
            hosts_file = "".join(f"{self.address(h)}\t{h}\n" for h in self.hosts)
            hosts_file = f"127.0.0.1\tlocalhost\n::1\tlocalhost\n{self.gateway}\ttest-runner\n{hosts_file}"
            for host in self.hosts:
                name = self.namespace(host)
                ip("netns", "add", name)
                self._made_namespaces.append(name)
                (NETNS_DIR / name).mkdir(parents=True, exist_ok=True)
                (NETNS_DIR / name / "hosts").write_text(hosts_file)
                ip("link", "add", self.veth(host), "type", "veth", "peer", "name", "eth0", "netns", name)
                ip("link", "set", self.veth(host), "master", self.bridge, "up")
                ip("-n", name, "addr", "add", f"{self.address(host)}/{self.subnet.prefixlen}", "dev", "eth0")
                ip("-n", name, "link", "set", "eth0", "up")
                ip("-n", name, "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """SIGKILL this network's processes still running, then delete its namespaces, bridge and hosts files."""
        for child in self.children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGKILL)
        for child in self.children:
            try:
                child.process.wait(10)
            except subprocess.TimeoutExpired:
                pass
            if child._log_file is not None:
                child._log_file.close()
                child._log_file = None
        for host in self.hosts:
            ip("link", "delete", self.veth(host), check=False)  # its peer goes too (a namespace goes lazily)
        for name in self._made_namespaces:
            kill_everything_in(name)  # anything the test left behind, e.g. a daemon it started there
            ip("netns", "delete", name, check=False)
            shutil.rmtree(NETNS_DIR / name, ignore_errors=True)
        self._made_namespaces.clear()
        if self._made_bridge:
            ip("link", "delete", self.bridge, check=False)
            self._made_bridge = False

    def __enter__(self) -> VirtualNetwork:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- processes and links -------------------------------------------------------

    def start_process(self, host: str, name: str, argv: Sequence[str], log_path: Path,
                      env: Mapping[str, str] | None = None, cwd: Path = processes.ROOT) -> Child:
        """Run ``argv`` inside ``host`` (``ip netns exec``), stdout and stderr into ``log_path``; a Child.

        ``ip netns exec`` execs ``argv`` in place, so the Child's pid is the command's own. The child also gets
        SIGTERM if the test process dies (tools.processes.popen_options), and close() SIGKILLs it if it still runs.
        """
        log_file = open(log_path, "ab")  # noqa: SIM115 - closed by Child.stop or close()
        try:
            process = subprocess.Popen(["ip", "netns", "exec", self.namespace(host), *argv], cwd=cwd,
                                       stdout=log_file, stderr=subprocess.STDOUT,
                                       env=dict(os.environ if env is None else env), **processes.popen_options())
        except OSError:
            log_file.close()
            raise
        child = Child(f"{name}@{host}", process, log_path, log_file)
        self.children.append(child)
        return child


def wait_reachable(address: str, port: int, timeout_s: float = 20.0) -> None:
    """Wait until a TCP connection from this process to ``address:port`` succeeds (AssertionError after timeout_s)."""
    import socket

    deadline = time.monotonic() + timeout_s
    last: OSError | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=1):
                return
        except OSError as error:
            last = error
            time.sleep(0.05)
    raise AssertionError(f"{address}:{port} not reachable after {timeout_s:.0f} s: {last}")
