"""Several brokers or backends in one setting: ``--address`` / WARMSERVE_ADDRESS and ``--connect`` / WARMSERVE_CONNECT take comma-separated lists."""

from __future__ import annotations

import pytest

from model_backend import cli
from model_backend.settings import ClientSettings, ServerSettings, SettingsError, build_settings

A, B = "tcp://127.0.0.1:5576", "ipc:///tmp/warmserve-b"


def test_a_client_address_list_is_split_in_order():
    assert ClientSettings(address=f"{A}, {B}").addresses == (A, B)
    assert ClientSettings(address=A).addresses == (A,)


def test_the_address_list_comes_from_the_flag_or_the_environment():
    from_env = build_settings(ClientSettings, None, {"WARMSERVE_ADDRESS": f"{B},{A}"})
    assert from_env.addresses == (B, A)
    args = cli.build_parser().parse_args(["ping", "--address", f"{A},{B}"])
    assert cli.client_settings_from(args).addresses == (A, B)


def test_a_worker_connect_list_is_split_in_order():
    assert ServerSettings(connect=f"{A},{B}").connect_addresses == (A, B)
    assert ServerSettings().connect_addresses == ()
    from_env = build_settings(ServerSettings, None, {"WARMSERVE_CONNECT": f"{A}, {B}"})
    assert from_env.connect_addresses == (A, B)


@pytest.mark.parametrize(
    "text, fragment",
    [
        (f"{A},", "without empty entries"),
        (f"{A},,{B}", "without empty entries"),
        (f"{A},localhost:5576", "Received: address='localhost:5576'"),
        (f"{A},udp://127.0.0.1:1", "tcp://, ipc:// or inproc://"),
        (f"{A},{A}", f"{A} more than once"),
        (",".join(f"tcp://127.0.0.1:{6000 + i}" for i in range(17)), "at most 16"),
    ],
)
def test_bad_address_lists_are_refused_naming_the_bad_entry(text, fragment):
    with pytest.raises(SettingsError, match="address") as info:
        ClientSettings(address=text)
    assert fragment in str(info.value)
    with pytest.raises(SettingsError, match="connect"):
        ServerSettings(connect=text.replace("address", "connect"))


def test_every_address_of_a_list_goes_through_the_loopback_rule():
    with pytest.raises(SettingsError, match=r"address\[1\]='tcp://10.1.2.3:5576'"):
        ClientSettings(address=f"{A},tcp://10.1.2.3:5576")
    with pytest.raises(SettingsError, match=r"connect\[0\]='tcp://broker-a:5577'"):
        ServerSettings(connect="tcp://broker-a:5577,tcp://127.0.0.1:5577")
    assert ClientSettings(address=f"{A},tcp://10.1.2.3:5576", insecure=True).addresses[1] == "tcp://10.1.2.3:5576"
