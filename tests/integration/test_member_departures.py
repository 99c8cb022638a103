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

from jetmq.core import DAG, Processor
from jetmq.job_status import JobStatus
from jetmq.testing import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

HEARTBEAT_OPTIONS = ("--heartbeat-interval-ms", "100", "--heartbeat-timeout-ms", "1000")
JOIN_TIMEOUT_S = 15.0
#: A forked member dies with its master at once (the kernel kills it); this is slack for a loaded machine.
ORPHAN_DEATH_S = 3.0


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


class StuckInUserCode(Processor):
    """A source that, on every member, writes a line to ``marker_path`` and then sleeps
    for an hour inside complete(): user code that never yields back to the member's loop."""

    def __init__(self, marker_path: str):
        self.marker_path = marker_path

    def complete(self):
        with open(self.marker_path, "a") as marker:
            marker.write(f"{self.context.global_index}\n")
        time.sleep(3600)
        return True


def test_when_the_master_is_killed_then_members_stuck_in_user_code_die_with_it(cluster, tmp_path):
    # Given a job whose processors sleep for an hour in user code, one on every member
    marker = tmp_path / "entered-user-code"
    dag = DAG()
    dag.new_vertex("stuck", lambda: StuckInUserCode(str(marker)))
    job = cluster.new_job(dag)
    wait_until(lambda: job.status is JobStatus.RUNNING, 30, lambda: f"the job is {job.status}")
    members = [psutil.Process(m.pid) for m in cluster.cluster().members]
    wait_until(lambda: marker.exists() and len(marker.read_text().splitlines()) >= len(members), 30,
               "the members never entered the sleeping user code")
    # When the master is SIGKILLed (it can say nothing to anyone)
    cluster.master_process.kill()
    cluster.master_process.wait()
    start = time.monotonic()
    # Then every member exits, although its main loop never runs again
    _, alive = psutil.wait_procs(members, timeout=ORPHAN_DEATH_S)
    assert not alive, f"members still running {time.monotonic() - start:.1f} s after their master died: " \
                      f"{[p.pid for p in alive]}"
