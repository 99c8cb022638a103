"""How members leave: a goodbye is always heard, and a forked member never outlives its master.

Real processes only: a cluster from the ``cluster`` fixture (heartbeats every 100 ms,
timeout 1 s), joined members started with ``jet-start --join``, and a master killed
with SIGKILL while its members are stuck in user code.
"""
import re
import subprocess
import time

import psutil
import pytest

from jetmq.job_status import JobStatus
from jetmq.testing import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

HEARTBEAT_OPTIONS = ("--heartbeat-interval-ms", "100", "--heartbeat-timeout-ms", "1000")
JOIN_TIMEOUT_S = 15.0


def master_log(cluster) -> str:
    return (cluster.data_dir / "logs" / "master.log").read_text()


def removal_reason(cluster, uuid: str) -> str:
    found = re.findall(rf"member {uuid} \(.*?\) removed: (.*?); size now", master_log(cluster))
    return found[-1] if found else "(not removed)"


def test_every_member_that_leaves_by_sigterm_is_recorded_as_left_not_as_disconnected(cluster, processes, tmp_path):
    # Given joined members, one after another (the goodbye and the hang-up race each time)
    for attempt in range(6):
        member = processes.start_cli("start", "--join", cluster.address, *HEARTBEAT_OPTIONS,
                                     "--log-file", str(tmp_path / f"joined-{attempt}.log"),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        info = wait_until(lambda: next((m for m in cluster.cluster().members if m.pid == member.pid), None),
                          JOIN_TIMEOUT_S, f"joined member {attempt} (pid {member.pid}) never joined")
        # When it gets SIGTERM (a graceful leave: it asks to go, then says goodbye and exits)
        member.terminate()
        assert member.wait(timeout=10) == 0
        wait_until(lambda: info.uuid not in {m.uuid for m in cluster.cluster().members}, 5,
                   f"member {info.uuid} still listed after it exited")
        # Then the master recorded its goodbye, not only its closed connection
        reason = removal_reason(cluster, info.uuid)
        assert reason.startswith("it left:"), f"attempt {attempt}: member removed because {reason!r}"
