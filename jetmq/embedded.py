"""``jetmq.Cluster``: a real local cluster started from Python, for scripts and tests.

It runs ``jet-start`` as a child process (a master that forks its members) on a free
port with a temporary data directory, and is itself a client of that cluster. On
exit it stops the cluster and makes sure no process it started is left running.
"""
from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterable

import psutil

from jetmq import clusterkey
from jetmq.client import JetClient
from jetmq.errors import ClusterStartError

#: How long to wait for the master and all members to be ready.
START_TIMEOUT_S = 60.0
#: How long a stopping cluster gets before what is left is killed.
STOP_TIMEOUT_S = 15.0


def read_ready_line(fd: int, process: subprocess.Popen, timeout_s: float, log_path: Path) -> str:
    """The address from a ``READY <address>`` line on ``fd``; ClusterStartError otherwise."""
    deadline = time.monotonic() + timeout_s
    buffer = b""
    with os.fdopen(fd, "rb", buffering=0) as pipe:
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ClusterStartError(f"the cluster was not ready within {timeout_s:.0f} s; see {log_path}")
            if select.select([pipe], [], [], remaining)[0]:
                chunk = pipe.read(4096)
                if not chunk:
                    code = process.wait(timeout=5)
                    raise ClusterStartError(f"the master exited with code {code} before it was ready; see {log_path}")
                buffer += chunk
    status, _, detail = buffer.split(b"\n", 1)[0].decode().partition(" ")
    if status != "READY":
        raise ClusterStartError(detail)
    return detail


class Cluster(JetClient):
    """A master and ``members`` forked members on this machine, as a context manager."""

    def __init__(self, members: int = 2, *, cluster_name: str = "jet", data_dir: str | Path | None = None,
                 heartbeat_interval_ms: int | None = None, heartbeat_timeout_ms: int | None = None,
                 scale_up_delay_ms: int | None = None, max_job_results: int | None = None,
                 job_result_ttl_s: int | None = None, no_auth: bool = False, respawn: bool = True,
                 metrics_collection_interval: float | None = None, web_port: int = 0, job_nice: int | None = None):
        """``no_auth``: no cluster key and no encryption (the cluster binds 127.0.0.1 only);
        ``respawn=False``: a member that dies is not replaced (Jet's behaviour);
        ``metrics_collection_interval``: how often, in seconds, members report job metrics
        (default 5); ``web_port``: the port of the dashboard and /metrics (default 0: none);
        ``job_nice``: how much nicer than their other threads the members run their jobs (default 10)."""
        super().__init__(addresses=None, key_file=clusterkey.NO_KEY)  # its own key, once started
        self.no_auth = no_auth
        self.respawn = respawn
        self.member_count = members
        self.cluster_name = cluster_name
        self._given_data_dir = Path(data_dir) if data_dir is not None else None
        self._options = {
            "--heartbeat-interval-ms": heartbeat_interval_ms,
            "--heartbeat-timeout-ms": heartbeat_timeout_ms,
            "--scale-up-delay-ms": scale_up_delay_ms,
            "--max-job-results": max_job_results,
            "--job-result-ttl-s": job_result_ttl_s,
            "--metrics-collection-interval": metrics_collection_interval,
            "--web-port": web_port,
            "--job-nice": job_nice,
        }
        self.data_dir: Path | None = None
        self.master_process: subprocess.Popen | None = None
        self._member_processes: dict[int, psutil.Process] = {}

    @property
    def key_file(self) -> Path:
        """The cluster's key: give it to clients of this cluster in other processes
        (`jet --key-file`, $JET_KEY_FILE, ``jetmq.connect(key_file=...)``)."""
        return self.data_dir / clusterkey.KEY_FILE

    @property
    def master_pid(self) -> int:
        return self.master_process.pid

    def start(self) -> "Cluster":
        self.data_dir = self._given_data_dir or Path(tempfile.mkdtemp(prefix="jetmq-cluster-"))
        log_path = self.data_dir / "logs" / "master.log"
        command = [sys.executable, "-m", "jetmq.cli.start", "-m", str(self.member_count), "--port", "0",
                   "--data-dir", str(self.data_dir), "--cluster-name", self.cluster_name]
        for option, value in self._options.items():
            if value is not None:
                command += [option, str(value)]
        if self.no_auth:
            command.append("--no-auth")
        if not self.respawn:
            command.append("--no-respawn")
        read_fd, write_fd = os.pipe()
        self.master_process = subprocess.Popen(
            [*command, "--ready-fd", str(write_fd)], pass_fds=(write_fd,), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write_fd)
        try:
            address = read_ready_line(read_fd, self.master_process, START_TIMEOUT_S, log_path)
        except BaseException:
            self._kill_everything()
            raise
        self._requester.addresses = [address]
        self._requester.key = clusterkey.load(self.key_file) if self.key_file.exists() else None
        self._remember_members(m.pid for m in self.cluster().members)
        return self

    def _remember_members(self, pids) -> None:
        """Keep handles on member processes (psutil handles survive pid reuse safely)."""
        for pid in pids:
            try:
                self._member_processes.setdefault(pid, psutil.Process(pid))
            except psutil.Error:
                pass

    def stop(self) -> None:
        """Stop the master and its members; kill whatever outlives the stop timeout."""
        if self.master_process is None:
            return
        if self.master_process.poll() is None:
            try:
                self._remember_members(self.shutdown_cluster()[1:])
            except Exception:
                self.master_process.terminate()
        self.close()
        try:
            self.master_process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass
        self._kill_everything()
        if self._given_data_dir is None and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _kill_everything(self) -> None:
        """SIGKILL the master, every member process we know of, and what they started."""
        roots = list(self._member_processes.values())
        if self.master_process is not None and self.master_process.poll() is None:
            roots.append(self.master_process.pid)
        kill_trees(roots, timeout_s=5)
        if self.master_process is not None:
            self.master_process.wait()

    def __enter__(self) -> "Cluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def kill_trees(roots: Iterable[psutil.Process | int], timeout_s: float) -> None:
    """SIGKILL each process (a psutil.Process or a pid) and all its descendants, and wait
    at most ``timeout_s`` for them to end. Each gets SIGCONT first: a stopped process
    cannot reap its children. Processes already gone are skipped."""
    targets: dict[int, psutil.Process] = {}
    for root in roots:
        try:
            process = root if isinstance(root, psutil.Process) else psutil.Process(root)
            if not process.is_running():
                continue
            targets.setdefault(process.pid, process)
            for child in process.children(recursive=True):
                targets.setdefault(child.pid, child)
        except psutil.Error:
            continue
    for process in targets.values():
        try:
            process.send_signal(signal.SIGCONT)
            process.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(list(targets.values()), timeout=timeout_s)
