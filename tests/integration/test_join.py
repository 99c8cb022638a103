"""Joined members are first-class: their own data dir, the master's versions, and peers
that cannot reach them are reported instead of leaving a job silently stuck."""
import re
import subprocess
import time

import pytest

from jetmq import JobConfig, JobStatus
from jetmq import protocol as p
from jetmq.requester import Requester
from jetmq.testing import wait_until
from tests.integration.keys import cluster_key
from jetmq.version import PYTHON_VERSION, __version__
from tests.integration.dags import streaming_dag

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

HEARTBEATS = ("--heartbeat-interval-ms", "100", "--heartbeat-timeout-ms", "1000")
WAIT_S = 30


def join(processes, cluster, *args):
    return processes.start_cli("start", "--join", cluster.address, *HEARTBEATS, *args,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def member_with_pid(cluster, pid):
    return next((m for m in cluster.cluster().members if m.pid == pid), None)


def test_a_joined_member_logs_into_its_data_dir(cluster, processes, tmp_path):
    member = join(processes, cluster, "--data-dir", str(tmp_path / "member-data"))
    info = wait_until(lambda: member_with_pid(cluster, member.pid), WAIT_S, "the member did not join")
    log = tmp_path / "member-data" / "logs" / f"member-{info.uuid[:8]}.log"
    # the master lists the member as soon as it is welcomed: the member logs that a moment later
    wait_until(lambda: log.exists() and "joined the cluster" in log.read_text(), WAIT_S,
               lambda: f"the log at {log} does not say the member joined: "
                       f"{log.read_text() if log.exists() else 'no such file'}")


def test_a_member_of_another_jetmq_or_python_version_is_refused_with_the_reason(cluster):
    requester = Requester(cluster.address, key=cluster_key())
    try:
        for jetmq_version, python_version in (("0.0.1", PYTHON_VERSION), (__version__, "3.8")):
            hello = p.Hello("5f0b8a2e-3c44-4a8e-9f77-1b2c3d4e5f60", 1, "elsewhere", "127.0.0.1:9", False, "jet",
                            jetmq_version, python_version, "")
            reply = requester.request(hello)
            assert isinstance(reply, p.Refused)
            assert f"the member jetmq {jetmq_version} on Python {python_version}" in reply.reason
            assert "jobs travel pickled" in reply.reason
    finally:
        requester.close()
    assert cluster.cluster().size == 2
    assert "refused member 5f0b8a2e" in (cluster.data_dir / "logs" / "master.log").read_text()


def test_a_member_its_peers_cannot_reach_is_reported_and_the_job_never_shows_running(cluster, processes):
    # Given a joined member that advertises an address where nobody listens
    member = join(processes, cluster, "--advertise", "127.0.0.2")
    wait_until(lambda: member_with_pid(cluster, member.pid), WAIT_S, "the member did not join")
    # When a job without auto-scaling starts on the three members
    job = cluster.new_job(streaming_dag(), JobConfig(auto_scaling=False))
    start = time.monotonic()
    # Then its start fails within seconds, naming the unreachable address, and it was never RUNNING
    statuses = set()
    wait_until(lambda: statuses.add(job.status) or job.status is JobStatus.FAILED, WAIT_S,
               lambda: f"the job is {job.status}")
    assert time.monotonic() - start < 15
    assert JobStatus.RUNNING not in statuses
    assert re.search(r"at 127\.0\.0\.2:\d+ did not answer within 5 s", job.failure_text), job.failure_text
    assert job.failure_text.startswith("TopologyChangedException")
    # and with auto-scaling on, a job keeps trying, never RUNNING, until the member is gone
    retrying = cluster.new_job(streaming_dag(), JobConfig())
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        assert retrying.status is not JobStatus.RUNNING
        time.sleep(0.1)
    member.kill()
    wait_until(lambda: retrying.status is JobStatus.RUNNING, WAIT_S, lambda: f"the job is {retrying.status}")
    retrying.cancel()
