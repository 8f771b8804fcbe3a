"""The loopback rule for every settings class, the keys folder checks, `keys init` / `keys add`.

CURVE on raw sockets: tests/inprocess/test_security.py; the keys commands as a process: tests/process/test_security.py."""

from __future__ import annotations

import ipaddress
import logging
import stat
from pathlib import Path

import pytest
import zmq
from hypothesis import given, settings as hsettings, strategies as st

from dashboard.settings import DashboardSettings, settings_from as dashboard_settings_from
from model_backend import cli, keys_command, security
from model_backend.settings import BrokerSettings, ClientSettings, ServerSettings, SettingsError
from tests.support.helpers import copy_keys

NOT_LOOPBACK = [
    "tcp://0.0.0.0:5576",
    "tcp://*:5576",
    "tcp://10.0.0.5:5576",
    "tcp://192.168.1.20:*",
    "tcp://gpu-host.example:5576",
    "tcp://gpu-host:5576",
    "tcp://eth0:5576",
    "tcp://[::]:5576",
    "tcp://[fe80::1]:5576",
    "tcp://[2001:db8::1]:5576",
    "tcp://127.0.0.1:0;10.0.0.5:5576",  # a loopback source address does not make the destination loopback
    "tcp://localhost.example.com:5576",
]
LOOPBACK = [
    "tcp://127.0.0.1:5576",
    "tcp://127.0.0.1:*",
    "tcp://127.1.2.3:5576",
    "tcp://localhost:5576",
    "tcp://LOCALHOST:5576",
    "tcp://[::1]:5576",
    "tcp://[::ffff:127.0.0.1]:5576",
    "ipc:///tmp/warmserve-test",
    "inproc://warmserve-test",
]


def build(kind: str, address: str, **extra):
    """One settings object of ``kind`` with ``address`` in the endpoint that kind checks."""
    if kind == "server-bind":
        return ServerSettings(bind=address, **extra)
    if kind == "server-connect":
        return ServerSettings(connect=address, **extra)
    if kind == "broker-frontend":
        return BrokerSettings(frontend=address, backend="tcp://127.0.0.1:*", **extra)
    if kind == "broker-backend":
        return BrokerSettings(frontend="tcp://127.0.0.1:*", backend=address, **extra)
    if kind == "client":
        return ClientSettings(address=address, **extra)
    if kind == "dashboard":
        return DashboardSettings(backend=address, **extra)
    raise AssertionError(kind)


KINDS = ["server-bind", "server-connect", "broker-frontend", "broker-backend", "client", "dashboard"]


# -- the loopback rule --------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("address", NOT_LOOPBACK)
def test_a_non_loopback_address_without_keys_is_refused_with_what_to_do(kind, address):
    with pytest.raises(SettingsError) as refused:
        build(kind, address)
    message = str(refused.value)
    assert message.startswith("Expected a loopback address")
    assert "Received: " in message and address in message
    assert "python -m model_backend keys init" in message and "--keys-dir" in message and "--insecure" in message


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("address", ["tcp://0.0.0.0:5576", "tcp://*:5576", "tcp://10.0.0.5:5576", "tcp://gpu-host:5576"])
def test_a_non_loopback_address_is_accepted_with_keys_or_with_insecure(kind, address, keys, caplog):
    assert build(kind, address, keys_dir=keys).keys_dir == keys
    with caplog.at_level(logging.WARNING, logger="model_backend.security"):
        built = build(kind, address, insecure=True)
    assert built.insecure is True
    # warned once per address and process: an earlier test may already have built one
    security._warned_insecure.discard(address)
    with caplog.at_level(logging.WARNING, logger="model_backend.security"):
        build(kind, address, insecure=True)
    assert any("--insecure" in r.getMessage() and address in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("address", LOOPBACK)
def test_loopback_and_local_transports_need_neither_keys_nor_insecure(kind, address):
    built = build(kind, address)
    assert built.insecure is False and built.keys_dir is None


@hsettings(max_examples=150, deadline=None)
@given(st.ip_addresses(), st.integers(1, 65535))
def test_the_rule_holds_for_every_ip_address(ip, port):
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    loopback = ip.is_loopback or (ip.version == 6 and ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback)
    address = f"tcp://{host}:{port}"
    assert security.is_loopback_endpoint(address) is loopback
    if loopback:
        ClientSettings(address=address)
    else:
        with pytest.raises(SettingsError, match="Expected a loopback address"):
            ClientSettings(address=address)


@hsettings(max_examples=100, deadline=None)
@given(st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,10}){0,3}", fullmatch=True))
def test_every_host_name_but_localhost_counts_as_not_loopback(name):
    assert security.is_loopback_endpoint(f"tcp://{name}:5576") is (name == "localhost")


def test_ipv4_loopback_is_the_whole_127_block():
    for ip in ipaddress.ip_network("127.0.0.0/30"):
        assert security.is_loopback_endpoint(f"tcp://{ip}:1")
    assert not security.is_loopback_endpoint("tcp://128.0.0.1:1")
    assert not security.is_loopback_endpoint("tcp://126.255.255.255:1")


# -- flags and environment ---------------------------------------------------------------------


def test_cli_flags_and_environment_reach_every_settings_class(monkeypatch, keys):
    args = cli.build_parser().parse_args(["serve", "--bind", "tcp://0.0.0.0:5576", "--keys-dir", str(keys)])
    assert cli.server_settings_from(args).keys_dir == keys
    args = cli.build_parser().parse_args(["ping", "--address", "tcp://10.0.0.5:5576", "--insecure"])
    assert cli.client_settings_from(args).insecure is True
    monkeypatch.setenv("WARMSERVE_KEYS_DIR", str(keys))
    args = cli.build_parser().parse_args(["classify", "x.png", "--address", "tcp://10.0.0.5:5576"])
    assert cli.client_settings_from(args).keys_dir == keys
    monkeypatch.delenv("WARMSERVE_KEYS_DIR")
    monkeypatch.setenv("WARMSERVE_INSECURE", "1")
    args = cli.build_parser().parse_args(["serve", "--connect", "tcp://gpu-host:5577"])
    assert cli.server_settings_from(args).insecure is True
    monkeypatch.setenv("WARMSERVE_INSECURE", "maybe")
    with pytest.raises(SettingsError, match="WARMSERVE_INSECURE"):
        cli.server_settings_from(cli.build_parser().parse_args(["serve"]))


def test_dashboard_passes_its_keys_to_the_client(keys):
    settings = dashboard_settings_from({"backend": "tcp://10.0.0.5:5576"}, environ={"WARMSERVE_DASH_KEYS_DIR": str(keys)})
    assert settings.client_settings().keys_dir == keys
    settings = dashboard_settings_from({"backend": "tcp://10.0.0.5:5576", "insecure": True}, environ={})
    assert settings.client_settings().insecure is True
    with pytest.raises(SettingsError, match="Expected a loopback address"):
        dashboard_settings_from({"backend": "tcp://10.0.0.5:5576"}, environ={})


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--bind", "tcp://0.0.0.0:5576"],
        ["serve", "--connect", "tcp://gpu-host:5577"],
        ["ping", "--address", "tcp://10.0.0.5:5576"],
        ["info", "--address", "tcp://*:5576"],
        ["classify", "x.png", "--address", "tcp://broker.example:5576"],
    ],
)
def test_the_cli_prints_the_clear_error_and_exits_2(argv, capsys, monkeypatch):
    monkeypatch.delenv("WARMSERVE_INSECURE", raising=False)
    monkeypatch.delenv("WARMSERVE_KEYS_DIR", raising=False)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Expected a loopback address") and "keys init" in err and "--insecure" in err
    assert "Traceback" not in err


def test_the_broker_cli_prints_the_clear_error_and_exits_2(capsys, monkeypatch):
    from model_backend.broker import main as broker_main

    monkeypatch.delenv("WARMSERVE_INSECURE", raising=False)
    monkeypatch.delenv("WARMSERVE_KEYS_DIR", raising=False)
    assert broker_main(["--backend", "tcp://0.0.0.0:5577"]) == 2
    err = capsys.readouterr().err
    assert "Expected a loopback address" in err and "backend='tcp://0.0.0.0:5577'" in err and "--insecure" in err


def test_the_dashboard_cli_prints_the_clear_error_and_exits_2(capsys, monkeypatch):
    from dashboard.__main__ import main as dashboard_main

    monkeypatch.delenv("WARMSERVE_DASH_INSECURE", raising=False)
    monkeypatch.delenv("WARMSERVE_DASH_KEYS_DIR", raising=False)
    with pytest.raises(SystemExit) as exited:
        dashboard_main(["serve", "--backend", "tcp://10.0.0.5:5576"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "Expected a loopback address" in err and "--keys-dir" in err


# -- checking a keys folder ----------------------------------------------------------------------


def test_a_missing_keys_folder_is_a_clear_error(tmp_path):
    with pytest.raises(SettingsError, match=r"Expected keys_dir to be a CURVE keys folder .* Received: keys_dir='.*nowhere' \(no such folder\)"):
        ClientSettings(address="tcp://10.0.0.5:5576", keys_dir=tmp_path / "nowhere")


@pytest.mark.parametrize(
    "kind, present, missing",
    [
        ("client", ["server.key"], "client.key_secret"),
        ("client", ["client.key_secret"], "server.key"),
        ("server-connect", ["server.key", "client.key_secret"], "worker.key_secret"),
        ("server-bind", ["clients"], "server.key_secret"),
        ("server-bind", ["server.key_secret"], "clients"),
        ("broker-frontend", ["server.key_secret", "clients"], "workers"),
        ("broker-backend", ["server.key_secret", "workers"], "clients"),
    ],
)
def test_missing_key_files_are_named(kind, present, missing, keys, tmp_path):
    partial = copy_keys(keys, tmp_path / "partial", *present)
    with pytest.raises(SettingsError) as refused:
        build(kind, "tcp://10.0.0.5:5576", keys_dir=partial)
    message = str(refused.value)
    assert message.startswith("Expected") and "Received:" in message and str(partial / missing) in message


def test_an_empty_allow_list_is_refused(keys, tmp_path):
    partial = copy_keys(keys, tmp_path / "partial", "server.key_secret")
    (partial / "clients").mkdir()
    with pytest.raises(SettingsError, match="Expected at least one public key in .*clients"):
        ServerSettings(bind="tcp://0.0.0.0:5576", keys_dir=partial)


@pytest.mark.parametrize("content", ["", "not a key file\n", 'curve\n    public-key = "short"\n'])
def test_a_damaged_key_file_is_refused(content, keys, tmp_path):
    broken = copy_keys(keys, tmp_path / "broken", "server.key", "client.key_secret")
    (broken / "server.key").write_text(content)
    with pytest.raises(SettingsError, match=r"Expected .*server\.key .*Received"):
        ClientSettings(address="tcp://10.0.0.5:5576", keys_dir=broken)


def test_empty_keys_dir_means_none(monkeypatch):
    monkeypatch.setenv("WARMSERVE_KEYS_DIR", "")
    args = cli.build_parser().parse_args(["ping"])
    assert cli.client_settings_from(args).keys_dir is None


# -- keys init / keys add ---------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keys_init_writes_pairs_and_allow_lists_with_safe_permissions(tmp_path, capsys):
    folder = tmp_path / "KEYS"
    assert cli.main(["keys", "init", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "server.key_secret" in out and "--keys-dir" in out and "keys add" in out
    for name in ("server", "client", "worker"):
        assert mode(folder / f"{name}.key_secret") == 0o600
        assert mode(folder / f"{name}.key") == 0o644
        public, secret = zmq.auth.load_certificate(folder / f"{name}.key_secret")
        assert secret is not None and zmq.auth.load_certificate(folder / f"{name}.key")[0] == public
    assert mode(folder) == 0o700
    assert zmq.auth.load_certificate(folder / "clients" / "dashboard.key")[0] == zmq.auth.load_certificate(folder / "client.key")[0]
    assert zmq.auth.load_certificate(folder / "workers" / "worker.key")[0] == zmq.auth.load_certificate(folder / "worker.key")[0]
    assert not list(folder.glob(".making-*"))
    # every role accepts this folder
    for kind in KINDS:
        build(kind, "tcp://10.0.0.5:5576", keys_dir=folder)


def test_keys_init_refuses_to_overwrite(tmp_path, capsys):
    folder = tmp_path / "KEYS"
    assert cli.main(["keys", "init", str(folder)]) == 0
    before = (folder / "server.key_secret").read_bytes()
    assert cli.main(["keys", "init", str(folder)]) == 2
    assert "already holds server.key_secret" in capsys.readouterr().err
    assert (folder / "server.key_secret").read_bytes() == before


def test_keys_add_makes_a_folder_to_copy_and_allows_the_key(tmp_path, capsys):
    folder = tmp_path / "KEYS"
    keys_command.init_keys(folder)
    assert cli.main(["keys", "add", str(folder), "gpu-2", "--role", "worker"]) == 0
    out = capsys.readouterr().out
    share = folder / "share" / "gpu-2"
    assert str(share) in out and "workers/gpu-2.key" in out
    assert sorted(p.name for p in share.iterdir()) == ["server.key", "worker.key", "worker.key_secret"]
    assert mode(share) == 0o700 and mode(share / "worker.key_secret") == 0o600
    assert zmq.auth.load_certificate(folder / "workers" / "gpu-2.key")[0] == zmq.auth.load_certificate(share / "worker.key")[0]
    assert (share / "server.key").read_bytes() == (folder / "server.key").read_bytes()
    assert not (folder / "clients" / "gpu-2.key").exists()  # a worker key is not a client key
    ServerSettings(connect="tcp://10.0.0.5:5577", keys_dir=share)  # a ready --keys-dir for that machine

    assert cli.main(["keys", "add", str(folder), "laptop", "--role", "client", "--out", str(tmp_path / "laptop")]) == 0
    assert sorted(p.name for p in (tmp_path / "laptop").iterdir()) == ["client.key", "client.key_secret", "server.key"]
    assert (folder / "clients" / "laptop.key").exists() and not (folder / "workers" / "laptop.key").exists()
    ClientSettings(address="tcp://10.0.0.5:5576", keys_dir=tmp_path / "laptop")


@pytest.mark.parametrize(
    "argv_tail, fragment",
    [
        (["gpu-2", "--role", "worker"], "already allowed"),
        (["../escape", "--role", "client"], "Expected NAME"),
        (["", "--role", "client"], "Expected NAME"),
        ([".hidden", "--role", "client"], "Expected NAME"),
    ],
)
def test_keys_add_refuses_bad_or_duplicate_names(argv_tail, fragment, tmp_path, capsys):
    folder = tmp_path / "KEYS"
    keys_command.init_keys(folder)
    keys_command.add_key(folder, "gpu-2", security.WORKER)
    assert cli.main(["keys", "add", str(folder), *argv_tail]) == 2
    assert fragment in capsys.readouterr().err
    assert not (tmp_path / "escape.key").exists()


def test_keys_add_needs_an_initialised_folder(tmp_path, capsys):
    assert cli.main(["keys", "add", str(tmp_path), "x", "--role", "client"]) == 2
    assert "keys init" in capsys.readouterr().err
