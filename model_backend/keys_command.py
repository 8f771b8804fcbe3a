"""``python -m model_backend keys init KEYS`` and ``keys add KEYS NAME --role client|worker``.

Makes CURVE key pairs with ``zmq.auth.create_certificates`` (see :mod:`model_backend.security`
for the folder layout and how the keys are used) and says which file goes to which machine.
Secret keys are written 0600 inside a 0700 staging folder, so they are never readable by
others, not even for a moment; folders holding secrets are 0700.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import zmq.auth

from . import security
from .settings import SettingsError

#: allow-list name of the pairs `keys init` makes
INIT_NAMES = {security.CLIENT: "dashboard", security.WORKER: "worker"}
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def add_parser(commands: argparse._SubParsersAction) -> None:
    keys = commands.add_parser("keys", help="make CURVE keys for ZeroMQ endpoints beyond this machine")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    init = actions.add_parser("init", help="a new keys folder: the server pair, a client pair and a worker pair, all allowed")
    init.add_argument("keys_dir", type=Path, metavar="KEYS")
    init.set_defaults(handler=run_init)
    add = actions.add_parser("add", help="a new client or worker pair for another machine, allowed in KEYS")
    add.add_argument("keys_dir", type=Path, metavar="KEYS")
    add.add_argument("name", metavar="NAME", help="a label for the machine or user, e.g. gpu-host-2")
    add.add_argument("--role", required=True, choices=(security.CLIENT, security.WORKER),
                     help="client: may send requests; worker: may register at a broker")
    add.add_argument("--out", type=Path, help="where to write the folder to copy (default KEYS/share/NAME)")
    add.set_defaults(handler=run_add)


def run_init(args: argparse.Namespace) -> int:
    keys = args.keys_dir
    try:
        init_keys(keys)
    except OSError as exc:
        print(f"error: cannot write keys in {keys}: {exc}", file=sys.stderr)
        return 1
    print(f"""Made CURVE keys in {keys}:
  server.key, server.key_secret   the backend's (or broker's) pair
  client.key, client.key_secret   a client pair (dashboard, classify/ping/info), allowed as clients/dashboard.key
  worker.key, worker.key_secret   a worker pair (serve --connect), allowed as workers/worker.key
Secret keys are mode 0600: never copy a .key_secret anywhere it is not needed.

On this machine: pass --keys-dir {keys} to serve, broker, classify/ping/info and the dashboard
(or set WARMSERVE_KEYS_DIR and WARMSERVE_DASH_KEYS_DIR).
Other machines each get a folder of their own, passed as --keys-dir there:
  dashboard / CLI host:  {keys}/server.key, {keys}/client.key, {keys}/client.key_secret
  worker host:           {keys}/server.key, {keys}/worker.key, {keys}/worker.key_secret
Better, give each machine its own pair (so one can be revoked by deleting its file):
  python -m model_backend keys add {keys} NAME --role client|worker""")
    return 0


def run_add(args: argparse.Namespace) -> int:
    try:
        out = add_key(args.keys_dir, args.name, args.role, args.out)
    except OSError as exc:
        print(f"error: cannot write keys: {exc}", file=sys.stderr)
        return 1
    domain = _domain_of(args.role)
    print(f"""Allowed {args.name} as a {args.role}: {args.keys_dir}/{domain}/{args.name}.key
Copy the folder {out} to {args.name}'s machine and pass --keys-dir <that folder> there
(it holds {args.name}'s secret key: copy it over a secure channel, keep it 0600, then delete {out} here).
Backends and brokers using {args.keys_dir} accept the new key at its next connection; no restart needed.
To revoke it later, delete {args.keys_dir}/{domain}/{args.name}.key (and restart to cut a live connection).""")
    return 0


def init_keys(keys_dir: Path) -> dict[str, Path]:
    """Make a keys folder: the server pair, a client pair (allowed as "dashboard") and a worker pair (allowed as "worker")."""
    keys_dir = Path(keys_dir).expanduser()
    if (keys_dir / (security.SERVER_NAME + security.SECRET_SUFFIX)).exists():
        raise SettingsError(f"Expected a new or empty folder for the keys. Received: {keys_dir} already holds "
                            f"{security.SERVER_NAME + security.SECRET_SUFFIX}; add keys with `python -m model_backend keys add {keys_dir} NAME --role client|worker`")
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for domain in (security.CLIENTS, security.WORKERS):
        (keys_dir / domain).mkdir(mode=0o700, exist_ok=True)
    made = {security.SERVER_NAME: _make_pair(keys_dir, security.SERVER_NAME)}
    for role, name in INIT_NAMES.items():
        made[role] = _make_pair(keys_dir, role)
        _publish(keys_dir / (role + security.PUBLIC_SUFFIX), keys_dir / _domain_of(role) / (name + security.PUBLIC_SUFFIX))
    return made


def add_key(keys_dir: Path, name: str, role: str, out: Path | None = None) -> Path:
    """A new ``role`` pair for another machine: allowed as KEYS/<role>s/NAME.key; returns the folder to copy there.

    That folder (default KEYS/share/NAME) is a ready ``--keys-dir``: server.key plus <role>.key(_secret).
    """
    keys_dir = Path(keys_dir).expanduser()
    if role not in (security.CLIENT, security.WORKER):
        raise SettingsError(f"Expected --role client or worker. Received: {role!r}")
    if not _NAME_PATTERN.match(name or ""):
        raise SettingsError(f"Expected NAME to be 1-64 letters, digits, '.', '_' or '-' (not starting with one of the last three). Received: {name!r}")
    server_public = keys_dir / (security.SERVER_NAME + security.PUBLIC_SUFFIX)
    if not server_public.is_file():
        raise SettingsError(f"Expected a keys folder made by `{security.KEYS_COMMAND}`. Received: {keys_dir} without {security.SERVER_NAME + security.PUBLIC_SUFFIX}")
    security.load_key(server_public, secret=False)
    allowed = keys_dir / _domain_of(role) / (name + security.PUBLIC_SUFFIX)
    if allowed.exists():
        raise SettingsError(f"Expected a new name. Received: {name!r} is already allowed ({allowed}); pick another or remove that file")
    if out is None:
        (keys_dir / "share").mkdir(mode=0o700, exist_ok=True)
        out = keys_dir / "share" / name
    out = Path(out).expanduser()
    if out.exists() and any(out.iterdir()):
        raise SettingsError(f"Expected --out to be a new or empty folder. Received: {out} is not empty")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    allowed.parent.mkdir(mode=0o700, exist_ok=True)
    _make_pair(out, role)
    shutil.copyfile(server_public, out / (security.SERVER_NAME + security.PUBLIC_SUFFIX))
    os.chmod(out / (security.SERVER_NAME + security.PUBLIC_SUFFIX), 0o644)
    _publish(out / (role + security.PUBLIC_SUFFIX), allowed)
    return out


def _make_pair(folder: Path, name: str) -> Path:
    """``folder/name.key`` (0644) and ``name.key_secret`` (0600), never readable by others even for a moment."""
    staging = Path(tempfile.mkdtemp(prefix=".making-", dir=folder))  # mode 0700
    try:
        public, secret = zmq.auth.create_certificates(staging, name)
        os.chmod(secret, 0o600)
        os.chmod(public, 0o644)
        os.replace(secret, folder / (name + security.SECRET_SUFFIX))
        os.replace(public, folder / (name + security.PUBLIC_SUFFIX))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder / (name + security.SECRET_SUFFIX)


def _publish(public_file: Path, allowed: Path) -> None:
    shutil.copyfile(public_file, allowed)
    os.chmod(allowed, 0o644)


def _domain_of(role: str) -> str:
    return security.CLIENTS if role == security.CLIENT else security.WORKERS
