"""Fixtures shared by every tier of jetmq's tests.

- Every test gets its own ``XDG_STATE_HOME`` under ``tmp_path``, so no test (and no
  process a test starts) writes to ``~/.local/state``.
- ``processes`` registers what a test starts and kills it at teardown, by psutil
  handle (a reused pid is never signalled). It then looks for leaks: any jetmq
  process carrying this test's ``XDG_STATE_HOME`` that is still alive is killed and
  reported as an error of the test.
- ``cluster`` is a real 2-member ``jetmq.Cluster`` with fast heartbeats.
- ``run_cli`` runs ``python -m jetmq.cli.<tool>`` with a bounded timeout.
- ``free_port`` returns a TCP port on 127.0.0.1 that nobody listens on (right now).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from jetmq.embedded import kill_trees

#: Heartbeats of the ``cluster`` fixture: fast, so failure-detection tests stay short.
FAST_HEARTBEAT_INTERVAL_MS = 100
FAST_HEARTBEAT_TIMEOUT_MS = 1000
#: What run_cli waits for a command by default before calling it hung.
CLI_TIMEOUT_S = 30.0
#: How long teardown waits for killed processes to disappear.
KILL_WAIT_S = 5.0
#: How long an unregistered process gets to exit on its own (a forked member whose master was
#: killed notices within a tick; one that only stops hearing heartbeats, within 3 s) before it
#: counts as leaked.
LEAK_GRACE_S = 3.5
CLI_MODULES = {"jet": "jetmq.cli.jet", "start": "jetmq.cli.start", "stop": "jetmq.cli.stop"}


def pytest_configure(config):
    # declared in setup.cfg too; registering them here keeps `-c /dev/null` runs warning-free
    config.addinivalue_line("markers", "slow: long-running chaos tests, left out of the default run")
    config.addinivalue_line("markers", "integration: starts a real cluster (master and member processes)")


@pytest.fixture(autouse=True)
def state_home(tmp_path, monkeypatch) -> Path:
    """A private XDG_STATE_HOME (the default data dir lives under it); no JET_ADDRESSES leaks in."""
    path = tmp_path / "xdg-state"
    path.mkdir()
    monkeypatch.setenv("XDG_STATE_HOME", str(path))
    monkeypatch.delenv("JET_ADDRESSES", raising=False)
    return path


# --------------------------------------------------------------------------------------
# Free ports and command lines


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def free_port():
    """``free_port()``: a port on 127.0.0.1 nobody listens on when it is called."""
    return _free_port


def cli_command(tool: str, *args: str) -> list[str]:
    args = tuple(map(str, args))
    if tool == "start" and "--join" not in args and "--web-port" not in args:
        args += ("--web-port", "0")  # no dashboard, unless the test asks: clusters never contend for 5780
    return [sys.executable, "-m", CLI_MODULES[tool], *args]


@pytest.fixture
def run_cli():
    """``run_cli(tool, *args, timeout=...)``: run jet / start / stop; a CompletedProcess (text)."""

    def run(tool: str, *args, timeout: float = CLI_TIMEOUT_S) -> subprocess.CompletedProcess:
        return subprocess.run(cli_command(tool, *args), stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)

    return run


# --------------------------------------------------------------------------------------
# Processes a test starts


def is_gone(process: psutil.Process) -> bool:
    """True once ``process`` has exited (a zombie counts: it runs nothing any more)."""
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


class ProcessRegistry:
    """Everything a test started, killed at teardown by psutil handle (safe under pid reuse)."""

    def __init__(self, marker: str):
        self._marker = marker  # this test's XDG_STATE_HOME, inherited by every process it starts
        self._popens: list[subprocess.Popen] = []
        self._handles: list[psutil.Process] = []

    def popen(self, command: list[str], **kwargs) -> subprocess.Popen:
        """Start ``command`` (stdin from /dev/null unless given) and register it."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        process = subprocess.Popen(command, **kwargs)
        self._popens.append(process)
        self.add(process.pid)
        return process

    def start_cli(self, tool: str, *args, **kwargs) -> subprocess.Popen:
        return self.popen(cli_command(tool, *args), **kwargs)

    def add(self, pid: int) -> psutil.Process | None:
        """Register a process started some other way (a daemon, a forked member) by pid."""
        try:
            handle = psutil.Process(pid)
        except psutil.NoSuchProcess:
            return None
        self._handles.append(handle)
        return handle

    def add_cluster(self, cluster) -> None:
        """Register a started jetmq.Cluster's master and its members."""
        self.add(cluster.master_pid)
        for member in cluster.cluster().members:
            self.add(member.pid)

    def kill_all(self) -> None:
        kill_trees(self._handles, timeout_s=KILL_WAIT_S)
        for process in self._popens:
            try:
                process.wait(timeout=KILL_WAIT_S)
            except subprocess.TimeoutExpired:
                pass

    def leaked(self) -> list[psutil.Process]:
        """Live jetmq processes that carry this test's XDG_STATE_HOME."""
        found = []
        for process in psutil.process_iter(["pid", "cmdline"]):
            if process.pid == os.getpid() or "jetmq" not in " ".join(process.info["cmdline"] or ()):
                continue
            try:
                if process.status() == psutil.STATUS_ZOMBIE:
                    continue
                if process.environ().get("XDG_STATE_HOME") == self._marker:
                    found.append(process)
            except psutil.Error:
                pass
        return found


@pytest.fixture
def processes(state_home):
    """The test's process registry; whatever is registered, or leaked, is killed at teardown."""
    registry = ProcessRegistry(str(state_home))
    yield registry
    registry.kill_all()
    leaked = registry.leaked()
    if leaked:
        _, leaked = psutil.wait_procs(leaked, timeout=LEAK_GRACE_S)
    if leaked:
        descriptions = [f"pid {p.pid}: {' '.join(p.info['cmdline'] or ())}" for p in leaked]
        for process in leaked:
            try:
                process.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(leaked, timeout=KILL_WAIT_S)
        pytest.fail("the test left processes running:\n  " + "\n  ".join(descriptions), pytrace=False)


# --------------------------------------------------------------------------------------
# Clusters


def _resume(cluster) -> None:
    """SIGCONT the master and its members, so a test that paused one can still stop it."""
    try:
        master = psutil.Process(cluster.master_pid)
        for process in [master, *master.children(recursive=True)]:
            process.send_signal(signal.SIGCONT)
    except psutil.Error:
        pass


@pytest.fixture
def cluster(processes, monkeypatch):
    """A running 2-member jetmq.Cluster, heartbeat interval 100 ms and timeout 1000 ms; always stopped.
    Without respawn (Jet's behaviour): a member a test kills stays lost.

    Its key is in $JET_KEY_FILE meanwhile, so the CLIs and members a test starts present it."""
    import jetmq

    instance = jetmq.Cluster(members=2, heartbeat_interval_ms=FAST_HEARTBEAT_INTERVAL_MS,
                             heartbeat_timeout_ms=FAST_HEARTBEAT_TIMEOUT_MS, respawn=False)
    instance.start()
    monkeypatch.setenv("JET_KEY_FILE", str(instance.key_file))
    try:
        processes.add_cluster(instance)
        yield instance
    finally:
        _resume(instance)
        instance.stop()
