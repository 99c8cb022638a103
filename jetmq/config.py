"""Settings of a cluster, as frozen dataclasses with Jet's defaults."""
from __future__ import annotations

import dataclasses
import enum
import os
import re
from dataclasses import dataclass
from pathlib import Path

from jetmq.errors import InvalidNameError
from jetmq.names import check_display_name, check_path_name
from jetmq.netaddr import is_loopback
from jetmq.restart_strategy import RestartStrategy

DEFAULT_PORT = 5701
DEFAULT_BIND_HOST = "127.0.0.1"
DEFAULT_CLUSTER_NAME = "jet"
#: The HTTP port of the dashboard and of Prometheus's /metrics (when it is free).
DEFAULT_WEB_PORT = 5780
#: A member heartbeats this often; the master heartbeats members as often.
HEARTBEAT_INTERVAL_MS = 500
#: A peer silent this long is gone (Jet's own default is 60 s; we want fast failover).
HEARTBEAT_TIMEOUT_MS = 3000
#: A member gives its master this many heartbeat timeouts of silence before it counts
#: it gone: a dead master is noticed at once anyway (a forked member's parent changes),
#: while a live one may stall for a moment on a loaded machine and must not lose its
#: members for it.
MASTER_SILENCE_FACTOR = 3
#: Jet's default delay before jobs scale up onto a new member.
SCALE_UP_DELAY_MS = 10_000
#: Finished jobs stay listed this long (Jet's default: 7 days)...
JOB_RESULT_TTL_MS = 7 * 24 * 3600 * 1000
#: ... and at most this many of them (Jet's default).
MAX_JOB_RESULTS = 1000
#: How often members report the metrics of the jobs they run (Jet's default: 5 s).
METRICS_COLLECTION_INTERVAL_MS = 5000
#: How long a master waits for its forked members to say hello at start.
MEMBER_START_TIMEOUT_S = 60.0
#: How far below its other threads a member runs the thread that runs its jobs (a nice
#: increment): when jobs keep the CPUs busy, the threads that move their data (ZeroMQ's
#: I/O thread), the link to the master and the master itself still run at once, so an
#: item does not wait a scheduler's time slice at every hop (see docs/engine.md).
JOB_THREAD_NICE = 10


def check_job_nice(value: int) -> int:
    """``value`` if it is a nice increment (0-19), else ValueError."""
    if type(value) is not int or not 0 <= value <= 19:
        raise ValueError(f"--job-nice must be a nice increment between 0 and 19, not {value!r}")
    return value


def default_member_count() -> int:
    """One member per CPU, at least two (a cluster of one shuffles nothing)."""
    return max(2, os.cpu_count() or 1)


#: A cluster name: it names a directory under $XDG_STATE_HOME/jetmq, so nothing that escapes it.
_CLUSTER_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")

def check_cluster_name(name: str) -> str:
    """``name`` if it can name a cluster (a directory of the default data dir), else ValueError."""
    if not isinstance(name, str) or not _CLUSTER_NAME.fullmatch(name):
        raise InvalidNameError(f"'{name}' is not a cluster name: use letters, digits, '.', '_' and '-', "
                         f"not starting with '.' (the name is a directory of the default data dir)")
    return name


def default_data_dir(cluster_name: str) -> Path:
    """``$XDG_STATE_HOME/jetmq/<cluster-name>`` (XDG's default: ~/.local/state)."""
    state_home = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state_home) / "jetmq" / cluster_name


#: A host zmq can connect to: a name or IPv4 address, or a bracketed IPv6 address.
_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*|\[[0-9A-Fa-f:.%]+\]")


def parse_address(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """``HOST[:PORT]`` as (host, port); ValueError with the text when malformed."""
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = text.strip(), str(default_port)
    if (not host or not _HOST.fullmatch(host) or not (port.isascii() and port.isdigit())
            or not 0 <= int(port) <= 65535):
        raise ValueError(f"'{text}' is not an address of the form HOST:PORT")
    return host, int(port)


@dataclass(frozen=True)
class ClusterConfig:
    """How a master runs: where it listens, how many members it forks, its timings."""

    cluster_name: str = DEFAULT_CLUSTER_NAME
    bind_host: str = DEFAULT_BIND_HOST
    port: int = DEFAULT_PORT
    advertise_host: str | None = None  # what the forked members advertise (see jetmq/netaddr.py)
    member_count: int = 2
    data_dir: Path | None = None
    snapshot_dir: Path | None = None  # the snapshot store, shared by every host (default: <data-dir>/snapshots)
    heartbeat_interval_ms: int = HEARTBEAT_INTERVAL_MS
    heartbeat_timeout_ms: int = HEARTBEAT_TIMEOUT_MS
    scale_up_delay_ms: int = SCALE_UP_DELAY_MS
    job_result_ttl_ms: int = JOB_RESULT_TTL_MS
    max_job_results: int = MAX_JOB_RESULTS
    no_auth: bool = False  # no cluster key, no encryption: only on a loopback address
    respawn: bool = True  # fork a replacement for a forked member that died unasked (see master/respawn.py)
    metrics_collection_interval_ms: int = METRICS_COLLECTION_INTERVAL_MS  # how often members report job metrics
    web_port: int | None = None  # the HTTP server's port: None for DEFAULT_WEB_PORT if free, 0 for none
    web_bind: str = DEFAULT_BIND_HOST  # where the HTTP server binds (non-loopback: the cluster key's token needed)
    job_nice: int = JOB_THREAD_NICE  # the forked members' job thread runs this much nicer than their others

    def __post_init__(self):
        check_cluster_name(self.cluster_name)
        check_job_nice(self.job_nice)
        if self.no_auth and not is_loopback(self.bind_host):
            raise ValueError(f"--no-auth needs a loopback --bind, not {self.bind_host}: without authentication "
                             f"anyone who reaches the port can run code on every member as you; on other "
                             f"addresses the cluster key is required")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, not {self.port}")
        if self.web_port is not None and not 0 <= self.web_port <= 65535:
            raise ValueError(f"--web-port must be between 0 and 65535, not {self.web_port}")
        if self.no_auth and self.web_port != 0 and not is_loopback(self.web_bind):
            raise ValueError(f"--no-auth needs a loopback --web-bind, not {self.web_bind}: without the cluster "
                             f"key anyone who reaches the HTTP port could read the cluster's jobs")
        if self.member_count < 0:
            raise ValueError(f"member count must be 0 or more, not {self.member_count}")
        if type(self.metrics_collection_interval_ms) is not int or self.metrics_collection_interval_ms <= 0:
            raise ValueError(f"the metrics collection interval must be a positive number of ms, not "
                             f"{self.metrics_collection_interval_ms!r}")
        if self.heartbeat_interval_ms <= 0 or self.heartbeat_timeout_ms <= self.heartbeat_interval_ms:
            raise ValueError(
                f"heartbeat timeout ({self.heartbeat_timeout_ms} ms) must exceed the interval "
                f"({self.heartbeat_interval_ms} ms), and both be positive"
            )

    @property
    def resolved_data_dir(self) -> Path:
        return Path(self.data_dir) if self.data_dir else default_data_dir(self.cluster_name)

    @property
    def resolved_snapshot_dir(self) -> Path:
        return Path(self.snapshot_dir) if self.snapshot_dir else self.resolved_data_dir / "snapshots"


@dataclass(frozen=True)
class MemberConfig:
    """How a member runs: whom it joins, where it binds its data socket."""

    master_endpoint: str
    uuid: str
    forked: bool
    master_pid: int = 0  # a forked member's parent: it dies with it (0: not forked)
    cluster_name: str = DEFAULT_CLUSTER_NAME
    bind_host: str = DEFAULT_BIND_HOST
    advertise_host: str | None = None  # what peers connect to (default: see jetmq/netaddr.py)
    key_file: str | None = None  # the cluster key's file (None: a cluster without authentication)
    heartbeat_interval_ms: int = HEARTBEAT_INTERVAL_MS
    heartbeat_timeout_ms: int = HEARTBEAT_TIMEOUT_MS
    job_nice: int = JOB_THREAD_NICE  # how much nicer than the member's other threads its job thread runs


class ProcessingGuarantee(enum.Enum):
    """What a job promises about its output when members fail or it restarts."""

    NONE = "NONE"
    """No snapshots: after a restart the job's state starts empty."""
    AT_LEAST_ONCE = "AT_LEAST_ONCE"
    """Snapshots without barrier alignment: nothing lost, some items may repeat."""
    EXACTLY_ONCE = "EXACTLY_ONCE"
    """Snapshots with aligned barriers: every item's effect exactly once."""


@dataclass(frozen=True)
class JobConfig:
    """A job's settings, with Jet 4.0's defaults."""

    name: str | None = None
    processing_guarantee: ProcessingGuarantee = ProcessingGuarantee.NONE
    snapshot_interval_ms: int = 10_000
    auto_scaling: bool = True
    split_brain_protection: bool = False
    initial_snapshot_name: str | None = None
    metrics_enabled: bool = True
    store_metrics_after_job_completion: bool = False
    restart_strategy: RestartStrategy = RestartStrategy()  # on a failure of the job's own code
    suspend_on_failure: bool = False  # a failure not restarted suspends the job (kept) instead of failing it

    def __post_init__(self):
        if isinstance(self.restart_strategy, dict):
            object.__setattr__(self, "restart_strategy", RestartStrategy.from_dict(self.restart_strategy))
        if not isinstance(self.restart_strategy, RestartStrategy):
            raise TypeError(f"restart_strategy must be a RestartStrategy, not {self.restart_strategy!r}")
        if isinstance(self.processing_guarantee, str):
            object.__setattr__(self, "processing_guarantee", ProcessingGuarantee[self.processing_guarantee])
        if not isinstance(self.processing_guarantee, ProcessingGuarantee):
            raise TypeError(f"processing_guarantee must be a ProcessingGuarantee, not {self.processing_guarantee!r}")
        if self.name is not None and not isinstance(self.name, str):
            raise TypeError(f"a job name must be a str, not {type(self.name).__name__}")
        if self.name is not None:
            check_display_name("job", self.name)
        if self.initial_snapshot_name is not None:
            check_path_name("snapshot", self.initial_snapshot_name)
        for name in ("auto_scaling", "split_brain_protection", "metrics_enabled",
                     "store_metrics_after_job_completion", "suspend_on_failure"):
            if type(getattr(self, name)) is not bool:
                raise TypeError(f"{name} must be True or False, not {getattr(self, name)!r}")
        if type(self.snapshot_interval_ms) is not int:
            raise TypeError(f"snapshot_interval_ms must be an int, not {self.snapshot_interval_ms!r}")
        if self.snapshot_interval_ms < 0:
            raise ValueError(f"snapshot_interval_ms must be 0 or more, not {self.snapshot_interval_ms}")

    def to_dict(self) -> dict:
        """A JSON-able form, for the wire and the job records."""
        d = dataclasses.asdict(self)
        d["processing_guarantee"] = self.processing_guarantee.name
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "JobConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def with_name(self, name: str | None) -> "JobConfig":
        return dataclasses.replace(self, name=name)
