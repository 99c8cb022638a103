"""Settings of a cluster, as frozen dataclasses with Jet's defaults."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORT = 5701
DEFAULT_BIND_HOST = "127.0.0.1"
DEFAULT_CLUSTER_NAME = "jet"
#: A member heartbeats this often; the master heartbeats members as often.
HEARTBEAT_INTERVAL_MS = 500
#: A peer silent this long is gone (Jet's own default is 60 s; we want fast failover).
HEARTBEAT_TIMEOUT_MS = 3000
#: Jet's default delay before jobs scale up onto a new member.
SCALE_UP_DELAY_MS = 10_000
#: How long a master waits for its forked members to say hello at start.
MEMBER_START_TIMEOUT_S = 60.0


def default_member_count() -> int:
    """One member per CPU, at least two (a cluster of one shuffles nothing)."""
    return max(2, os.cpu_count() or 1)


def default_data_dir(cluster_name: str) -> Path:
    """``$XDG_STATE_HOME/jetmq/<cluster-name>`` (XDG's default: ~/.local/state)."""
    state_home = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state_home) / "jetmq" / cluster_name


def parse_address(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """``HOST[:PORT]`` as (host, port); ValueError with the text when malformed."""
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = text.strip(), str(default_port)
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"'{text}' is not an address of the form HOST:PORT")
    return host, int(port)


@dataclass(frozen=True)
class ClusterConfig:
    """How a master runs: where it listens, how many members it forks, its timings."""

    cluster_name: str = DEFAULT_CLUSTER_NAME
    bind_host: str = DEFAULT_BIND_HOST
    port: int = DEFAULT_PORT
    member_count: int = 2
    data_dir: Path | None = None
    heartbeat_interval_ms: int = HEARTBEAT_INTERVAL_MS
    heartbeat_timeout_ms: int = HEARTBEAT_TIMEOUT_MS
    scale_up_delay_ms: int = SCALE_UP_DELAY_MS

    def __post_init__(self):
        if self.member_count < 0:
            raise ValueError(f"member count must be 0 or more, not {self.member_count}")
        if self.heartbeat_interval_ms <= 0 or self.heartbeat_timeout_ms <= self.heartbeat_interval_ms:
            raise ValueError(
                f"heartbeat timeout ({self.heartbeat_timeout_ms} ms) must exceed the interval "
                f"({self.heartbeat_interval_ms} ms), and both be positive"
            )

    @property
    def resolved_data_dir(self) -> Path:
        return Path(self.data_dir) if self.data_dir else default_data_dir(self.cluster_name)


@dataclass(frozen=True)
class MemberConfig:
    """How a member runs: whom it joins, where it binds its data socket."""

    master_endpoint: str
    uuid: str
    forked: bool
    cluster_name: str = DEFAULT_CLUSTER_NAME
    bind_host: str = DEFAULT_BIND_HOST
    heartbeat_interval_ms: int = HEARTBEAT_INTERVAL_MS
    heartbeat_timeout_ms: int = HEARTBEAT_TIMEOUT_MS
