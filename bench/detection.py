"""How fast the master notices a member's death (SIGKILL) or hang (SIGSTOP).

Baselines: for a kill, the floor is how fast *any* parent can learn that a child
died, a bare pidfd on a bare child process, measured here in the same run. For a
hang, it is the configured heartbeat timeout, which no heartbeat detector can beat.
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

import psutil

import jetmq
from bench.report import Row, median
from jetmq.config import HEARTBEAT_TIMEOUT_MS
from jetmq.testing import wait_until

KILLS = 20
HANGS = 3


def _pidfd_floor_ms() -> float:
    samples = []
    for _ in range(KILLS):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        pidfd = os.pidfd_open(child.pid)
        start = time.perf_counter()
        child.send_signal(signal.SIGKILL)
        select.select([pidfd], [], [], 5)
        samples.append((time.perf_counter() - start) * 1000)
        os.close(pidfd)
        child.wait()
    return median(samples)


def _wait_removed(cluster: jetmq.Cluster, uuid: str, timeout_s: float) -> float:
    """Seconds from now until ``uuid`` is no longer a member, polling the master tightly."""
    start = time.perf_counter()
    while any(m.uuid == uuid for m in cluster.cluster().members):
        if time.perf_counter() - start > timeout_s:
            raise RuntimeError(f"member {uuid} still listed after {timeout_s} s")
    return time.perf_counter() - start


def _kill_detection_ms() -> float:
    samples = []
    with jetmq.Cluster(members=KILLS) as cluster:
        for member in cluster.cluster().members:
            os.kill(member.pid, signal.SIGKILL)
            samples.append(_wait_removed(cluster, member.uuid, 5) * 1000)
    return median(samples)


def _hang_detection_ms() -> float:
    samples = []
    with jetmq.Cluster(members=1) as cluster:
        for _ in range(HANGS):
            joined = subprocess.Popen([sys.executable, "-m", "jetmq.cli.start", "--join", cluster.address,
                                       "--key-file", str(cluster.key_file)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                member = wait_until(lambda: next((m for m in cluster.cluster().members if m.pid == joined.pid), None),
                                    30, "the joined member never appeared")
                joined.send_signal(signal.SIGSTOP)
                samples.append(_wait_removed(cluster, member.uuid, 30) * 1000)
            finally:
                joined.kill()
                joined.wait()
    return median(samples)


def run() -> list[Row]:
    assert psutil.cpu_count() >= 1
    return [
        Row(f"member kill detected, median of {KILLS}", _kill_detection_ms(), _pidfd_floor_ms(), "ms",
            "bare pidfd on a bare child", "< 100 ms"),
        Row(f"member hang (SIGSTOP) detected, median of {HANGS}", _hang_detection_ms(), HEARTBEAT_TIMEOUT_MS,
            "ms", "heartbeat timeout", "~1x"),
    ]
