"""CURVE on raw ZeroMQ sockets: the right keys talk, plain, unknown and wrong-role keys are refused, allow lists change
without a restart, refusals are logged.

The loopback rule and the keys folder checks are in tests/unit/test_security.py.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import zmq

from model_backend import keys_command, security
from tests.support.helpers import copy_keys


def exchange(server_keys: Path | None, client_keys: Path | None, role: str = security.CLIENT, domain: str = security.CLIENTS,
             wait_ms: int = 400) -> bytes | None:
    """Bind a ROUTER secured with ``server_keys``; connect a DEALER with ``client_keys``; what the ROUTER receives."""
    context = zmq.Context.instance()
    router = context.socket(zmq.ROUTER)
    dealer = context.socket(zmq.DEALER)
    try:
        security.secure_server(router, server_keys, domain)
        router.linger = 0
        router.bind("tcp://127.0.0.1:*")
        security.secure_client(dealer, client_keys, role)
        dealer.linger = 0
        dealer.connect(router.getsockopt_string(zmq.LAST_ENDPOINT))
        try:
            dealer.send(b"hello", zmq.NOBLOCK)  # a refused handshake can drop the only pipe before this send
        except zmq.Again:
            return None
        if router.poll(wait_ms):
            return router.recv_multipart()[-1]
        return None
    finally:
        dealer.close(0)
        router.close(0)


def test_curve_sockets_talk_with_the_right_keys(keys):
    assert exchange(keys, keys) == b"hello"
    assert exchange(keys, keys, security.WORKER, security.WORKERS) == b"hello"


def test_curve_server_refuses_plain_unknown_and_wrong_role_keys(keys, tmp_path):
    stranger = tmp_path / "stranger"
    keys_command.init_keys(stranger)
    impostor = copy_keys(keys, tmp_path / "impostor", "server.key")  # knows the server, has its own client key
    shutil.copy2(stranger / "client.key_secret", impostor / "client.key_secret")
    assert exchange(keys, None) is None  # no CURVE at all
    assert exchange(keys, impostor) is None  # a key that is not in clients/
    assert exchange(keys, keys, security.WORKER, security.CLIENTS) is None  # a worker key on the clients port
    assert exchange(keys, keys, security.CLIENT, security.WORKERS) is None  # a client key on the workers port
    assert exchange(keys, stranger) is None  # a client that trusts another server key


def test_a_key_added_later_is_accepted_without_a_restart_and_a_removed_one_refused(tmp_path):
    folder = tmp_path / "KEYS"
    keys_command.init_keys(folder)
    context = zmq.Context.instance()
    router = context.socket(zmq.ROUTER)
    router.linger = 0
    security.secure_server(router, folder, security.CLIENTS)
    router.bind("tcp://127.0.0.1:*")
    endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)

    def say_hello(keys_dir: Path) -> bool:
        dealer = context.socket(zmq.DEALER)
        dealer.linger = 0
        security.secure_client(dealer, keys_dir, security.CLIENT)
        dealer.connect(endpoint)
        try:
            dealer.send(b"hello", zmq.NOBLOCK)
            return bool(router.poll(400)) and router.recv_multipart()[-1] == b"hello"
        except zmq.Again:
            return False
        finally:
            dealer.close(0)

    try:
        late = keys_command.add_key(folder, "late", security.CLIENT)  # after the server started
        assert say_hello(late)
        (folder / "clients" / "late.key").unlink()
        assert not say_hello(late)
        assert say_hello(folder)
    finally:
        router.close(0)


def test_a_damaged_file_in_an_allow_list_does_not_lock_the_others_out(tmp_path, caplog):
    folder = tmp_path / "KEYS"
    keys_command.init_keys(folder)
    (folder / "clients" / "broken.key").write_text("not a key\n")
    with caplog.at_level(logging.WARNING, logger="model_backend.security"):
        assert exchange(folder, folder) == b"hello"
    assert any("broken.key" in record.getMessage() for record in caplog.records)


def test_a_refused_key_is_logged_by_the_server(keys, tmp_path, caplog):
    stranger = tmp_path / "stranger"
    keys_command.init_keys(stranger)
    impostor = copy_keys(keys, tmp_path / "impostor", "server.key")
    shutil.copy2(stranger / "client.key_secret", impostor / "client.key_secret")
    with caplog.at_level(logging.WARNING, logger="model_backend.security"):
        assert exchange(keys, impostor) is None
    stranger_public = zmq.auth.load_certificate(stranger / "client.key")[0].decode()
    assert any("Refused" in r.getMessage() and stranger_public in r.getMessage() for r in caplog.records)


def test_a_client_keeps_its_keys_when_the_files_vanish_after_start(tmp_path, caplog):
    folder = tmp_path / "KEYS"
    keys_command.init_keys(folder)
    mine = copy_keys(folder, tmp_path / "mine", "server.key", "client.key_secret")
    assert exchange(folder, mine) == b"hello"
    (mine / "client.key_secret").unlink()
    with caplog.at_level(logging.ERROR, logger="model_backend.security"):
        assert exchange(folder, mine) == b"hello"
    assert any("client.key_secret" in record.getMessage() for record in caplog.records)
