"""Settings: addresses, cluster configuration checks, and where the data directory goes."""
from pathlib import Path

import pytest

from jetmq.config import (
    DEFAULT_PORT,
    HEARTBEAT_INTERVAL_MS,
    HEARTBEAT_TIMEOUT_MS,
    ClusterConfig,
    default_data_dir,
    parse_address,
)

pytestmark = pytest.mark.timeout(30)


# ---- parse_address ----------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:5701", ("127.0.0.1", 5701)),
    ("localhost:0", ("localhost", 0)),
    ("jet.example.com:65535", ("jet.example.com", 65535)),
    ("my-host.example-dc.net:5701", ("my-host.example-dc.net", 5701)),
    ("[::1]:5701", ("[::1]", 5701)),
    ("10.0.0.7:1", ("10.0.0.7", 1)),
    ("  127.0.0.1:5702\n", ("127.0.0.1", 5702)),
    ("127.0.0.1:005701", ("127.0.0.1", 5701)),
    ("somehost", ("somehost", DEFAULT_PORT)),
    (" somehost ", ("somehost", DEFAULT_PORT)),
])
def test_parse_address_accepts_host_and_port(text, expected):
    assert parse_address(text) == expected


def test_parse_address_uses_the_given_default_port_when_none_is_written():
    assert parse_address("somehost", default_port=6000) == ("somehost", 6000)
    assert parse_address("somehost:7000", default_port=6000) == ("somehost", 7000)


@pytest.mark.parametrize("text", [
    "", "   ", ":5701", "host:", "host:port", "host:-1", "host:+80", "host:65536", "host:99999999999999999999",
    "host:1.5", "host:0x10", "host: 80", "host:80 x",
])
def test_parse_address_rejects_malformed_text_naming_it(text):
    with pytest.raises(ValueError) as raised:
        parse_address(text)
    assert f"'{text}'" in str(raised.value)
    assert "HOST:PORT" in str(raised.value)


@pytest.mark.parametrize("text", ["host:²", "host:١٢", "host:５７０１"])
def test_parse_address_rejects_non_ascii_digits_with_the_address_message(text):
    # str.isdigit() is True for '²' and for Arabic-Indic or full-width digits; int() then either
    # fails with its own message ("invalid literal for int()") or reads a port nobody typed
    with pytest.raises(ValueError) as raised:
        parse_address(text)
    assert "HOST:PORT" in str(raised.value)


@pytest.mark.parametrize("text", ["no such host:80", "bad\thost:80", "host\n:80", "a/b:80", "-x:80", "*:80"])
def test_parse_address_rejects_hosts_zeromq_cannot_connect_to(text):
    # such a host reaches zmq's connect(), which raises EINVAL: the CLI then prints a traceback
    with pytest.raises(ValueError):
        parse_address(text)


# ---- ClusterConfig ----------------------------------------------------------------------------


def test_cluster_config_defaults_are_jets():
    config = ClusterConfig()
    assert (config.cluster_name, config.bind_host, config.port) == ("jet", "127.0.0.1", 5701)
    assert (config.heartbeat_interval_ms, config.heartbeat_timeout_ms) == (HEARTBEAT_INTERVAL_MS, HEARTBEAT_TIMEOUT_MS)
    assert config.heartbeat_timeout_ms > config.heartbeat_interval_ms > 0


@pytest.mark.parametrize("kwargs, words", [
    ({"member_count": -1}, ["member count", "-1"]),
    ({"heartbeat_interval_ms": 0}, ["heartbeat", "0 ms"]),
    ({"heartbeat_interval_ms": -100}, ["heartbeat", "-100 ms"]),
    ({"heartbeat_interval_ms": 500, "heartbeat_timeout_ms": 500}, ["timeout (500 ms)", "interval (500 ms)"]),
    ({"heartbeat_interval_ms": 500, "heartbeat_timeout_ms": 100}, ["timeout (100 ms)", "interval (500 ms)"]),
])
def test_cluster_config_rejects_bad_values_with_a_message_naming_them(kwargs, words):
    with pytest.raises(ValueError) as raised:
        ClusterConfig(**kwargs)
    for word in words:
        assert word in str(raised.value)


def test_cluster_config_accepts_edge_values():
    ClusterConfig(member_count=0)  # a master alone; members join with --join
    ClusterConfig(port=0)  # a free port
    ClusterConfig(port=65535)
    ClusterConfig(heartbeat_interval_ms=1, heartbeat_timeout_ms=2)


@pytest.mark.parametrize("port", [-1, 65536, 70000])
def test_cluster_config_rejects_a_port_outside_0_to_65535(port):
    # unchecked, port 70000 reaches zmq, which binds 70000 % 65536 = 4464 without a word
    with pytest.raises(ValueError) as raised:
        ClusterConfig(port=port)
    assert str(port) in str(raised.value)


# ---- data directory ---------------------------------------------------------------------------


def test_default_data_dir_is_under_xdg_state_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_data_dir("jet") == tmp_path / "state" / "jetmq" / "jet"
    assert default_data_dir("prod") == tmp_path / "state" / "jetmq" / "prod"


@pytest.mark.parametrize("value", [None, ""])
def test_default_data_dir_falls_back_to_local_state_in_home(monkeypatch, tmp_path, value):
    if value is None:
        monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_STATE_HOME", value)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_data_dir("jet") == tmp_path / "home" / ".local" / "state" / "jetmq" / "jet"


def test_resolved_data_dir_is_the_given_one_else_the_default_for_the_cluster_name(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert ClusterConfig(data_dir=Path("/srv/jet")).resolved_data_dir == Path("/srv/jet")
    assert ClusterConfig(cluster_name="blue").resolved_data_dir == tmp_path / "jetmq" / "blue"


def test_every_test_runs_with_a_private_xdg_state_home(state_home, tmp_path):
    # the autouse fixture of tests/conftest.py: nothing a test starts writes to ~/.local/state
    assert state_home.parent == tmp_path
    assert default_data_dir("jet") == state_home / "jetmq" / "jet"


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "..", "with space", "x" * 101])
def test_cluster_config_rejects_names_that_are_no_directory_name(name):
    with pytest.raises(ValueError, match="is not a cluster name"):
        ClusterConfig(cluster_name=name)


@pytest.mark.parametrize("name", ["jet", "prod-2", "a.b_c", "X"])
def test_cluster_config_accepts_plain_names(name):
    assert ClusterConfig(cluster_name=name).cluster_name == name
