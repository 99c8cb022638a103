"""Jet's auto-scaling table on a real cluster, cell by cell, and graceful member leaves.

| auto-scaling | guarantee        | member added                     | member removed         |
|--------------|------------------|----------------------------------|------------------------|
| on           | any              | restart after the scale-up delay | restart at once        |
| off          | NONE             | keep running on old members      | fail (TopologyChanged) |
| off          | at-least/exactly | keep running on old members      | suspend                |
"""
import os
import signal
import subprocess
import time

import pytest

import jetmq
from jetmq import JobConfig, JobStatus, ProcessingGuarantee
from jetmq.testing import wait_until
from jetmq.testing import sequence_dag, verify_sequences
from tests.integration.dags import KEYS, counting_dag

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

COUNT = 10_000
WAIT_S = 30
SCALE_UP_DELAY_MS = 1500
GUARANTEES = [ProcessingGuarantee.NONE, ProcessingGuarantee.AT_LEAST_ONCE, ProcessingGuarantee.EXACTLY_ONCE]


@pytest.fixture
def cluster(tmp_path, processes, monkeypatch):
    with jetmq.Cluster(members=2, data_dir=tmp_path / "data", heartbeat_interval_ms=100, heartbeat_timeout_ms=1000,
                       scale_up_delay_ms=SCALE_UP_DELAY_MS, respawn=False) as instance:  # Jet's table, exactly
        monkeypatch.setenv("JET_KEY_FILE", str(instance.key_file))  # for the members a test joins
        for member in instance.cluster().members:
            processes.add(member.pid)
        yield instance


def join_member(cluster, processes):
    """Start one more member with `jet-start --join`; return its process once it is in."""
    before = cluster.cluster().size
    member = processes.start_cli("start", "--join", cluster.address, "--heartbeat-interval-ms", "100",
                                 "--heartbeat-timeout-ms", "1000", stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    wait_until(lambda: cluster.cluster().size == before + 1, WAIT_S, "the new member did not join")
    return member


def start_job(cluster, name, guarantee, auto_scaling=True, **kwargs):
    job = cluster.new_job(counting_dag(name, COUNT, **kwargs),
                          JobConfig(name=name, processing_guarantee=guarantee, auto_scaling=auto_scaling,
                                    snapshot_interval_ms=200))
    wait_until(lambda: job.status is JobStatus.RUNNING, WAIT_S, lambda: f"{name} is {job.status}")
    if guarantee is not ProcessingGuarantee.NONE:
        wait_until(lambda: job.metrics()["last_snapshot_id"] >= 0, WAIT_S, "no snapshot was committed")
    return job


def start_streaming_job(cluster, name, guarantee, auto_scaling=True):
    """A job that runs until cancelled, writing per-key sequence numbers to list `name`."""
    job = cluster.new_job(sequence_dag(name, keys=KEYS, per_second=2000),
                          JobConfig(name=name, processing_guarantee=guarantee, auto_scaling=auto_scaling,
                                    snapshot_interval_ms=200))
    wait_until(lambda: job.status is JobStatus.RUNNING, WAIT_S, lambda: f"{name} is {job.status}")
    if guarantee is not ProcessingGuarantee.NONE:
        wait_until(lambda: job.metrics()["last_snapshot_id"] >= 0, WAIT_S, "no snapshot was committed")
    return job


def cancel_and_check_sequences(cluster, job, name, guarantee):
    """Let the job commit a little more, cancel it, and check its sequence numbers."""
    if guarantee is not ProcessingGuarantee.NONE:
        start = job.metrics()["last_snapshot_id"]
        wait_until(lambda: job.metrics()["last_snapshot_id"] >= start + 2, WAIT_S, "no further snapshots")
    job.cancel()
    wait_until(lambda: job.status is JobStatus.FAILED, WAIT_S, "the job was not cancelled")
    verdict = verify_sequences(cluster.get_list(name))
    assert verdict.items > 0, verdict
    if guarantee is ProcessingGuarantee.EXACTLY_ONCE:
        assert verdict.exactly_once, verdict
    elif guarantee is ProcessingGuarantee.AT_LEAST_ONCE:
        assert verdict.lost == 0, verdict


def check_output(cluster, name, guarantee):
    counts = cluster.get_map(name)
    if guarantee is ProcessingGuarantee.EXACTLY_ONCE:
        assert counts == {key: COUNT // KEYS for key in range(KEYS)}, counts
    elif guarantee is ProcessingGuarantee.AT_LEAST_ONCE:
        assert set(counts) == set(range(KEYS)) and min(counts.values()) >= COUNT // KEYS, counts
    else:  # NONE after a restart: state started empty, so the counts are of the last execution only
        assert sum(counts.values()) <= COUNT, counts


# ------------------------------------------------------------------------------- member added


@pytest.mark.parametrize("guarantee", GUARANTEES, ids=lambda g: g.name)
def test_member_added_with_auto_scaling_restarts_the_job_after_the_delay(cluster, processes, guarantee):
    job = start_streaming_job(cluster, "added-on", guarantee)
    assert job.metrics()["executions_started"] == 1
    join_member(cluster, processes)
    added = time.monotonic()
    wait_until(lambda: len(job.metrics()["execution_members"]) == 3, WAIT_S, "the job did not scale up")
    assert time.monotonic() - added >= SCALE_UP_DELAY_MS / 1000 - 0.1, "it restarted before the delay"
    assert job.metrics()["executions_started"] == 2
    cancel_and_check_sequences(cluster, job, "added-on", guarantee)


@pytest.mark.parametrize("guarantee", GUARANTEES, ids=lambda g: g.name)
def test_member_added_without_auto_scaling_keeps_the_job_on_its_members(cluster, processes, guarantee):
    job = start_streaming_job(cluster, "added-off", guarantee, auto_scaling=False)
    join_member(cluster, processes)
    time.sleep(SCALE_UP_DELAY_MS / 1000 + 0.5)  # nothing may happen: wait past the delay on purpose
    assert job.status is JobStatus.RUNNING
    assert job.metrics()["executions_started"] == 1
    assert len(job.metrics()["execution_members"]) == 2
    cancel_and_check_sequences(cluster, job, "added-off", guarantee)


# ------------------------------------------------------------------------------- member removed


@pytest.mark.parametrize("guarantee", GUARANTEES, ids=lambda g: g.name)
def test_member_removed_with_auto_scaling_restarts_the_job_at_once(cluster, guarantee):
    job = start_job(cluster, "removed-on", guarantee)
    os.kill(cluster.cluster().members[1].pid, signal.SIGKILL)
    wait_until(lambda: job.metrics()["executions_started"] == 2, WAIT_S, "the job did not restart")
    assert len(job.metrics()["execution_members"]) == 1
    job.join(timeout=WAIT_S)
    check_output(cluster, "removed-on", guarantee)


def test_member_removed_without_auto_scaling_and_guarantee_fails_the_job(cluster):
    job = start_job(cluster, "removed-off-none", ProcessingGuarantee.NONE, auto_scaling=False)
    victim = cluster.cluster().members[1]
    os.kill(victim.pid, signal.SIGKILL)
    wait_until(lambda: job.status is JobStatus.FAILED, WAIT_S, lambda: f"the job is {job.status}")
    assert job.failure_text.startswith(f"TopologyChangedException: member {victim.uuid} ({victim.address}) left")
    with pytest.raises(jetmq.JobFailedError, match="TopologyChangedException"):
        job.join(timeout=WAIT_S)


@pytest.mark.parametrize("guarantee", GUARANTEES[1:], ids=lambda g: g.name)
def test_member_removed_without_auto_scaling_suspends_a_job_with_a_guarantee(cluster, guarantee):
    job = start_job(cluster, "removed-off", guarantee, auto_scaling=False)
    os.kill(cluster.cluster().members[1].pid, signal.SIGKILL)
    wait_until(lambda: job.status is JobStatus.SUSPENDED, WAIT_S, lambda: f"the job is {job.status}")
    job.resume()
    job.join(timeout=WAIT_S)
    check_output(cluster, "removed-off", guarantee)


# ------------------------------------------------------------------------------- the scale-up delay


def test_two_members_added_within_the_delay_cause_one_restart(cluster, processes):
    job = start_streaming_job(cluster, "two-added", ProcessingGuarantee.EXACTLY_ONCE)
    join_member(cluster, processes)
    join_member(cluster, processes)
    wait_until(lambda: len(job.metrics()["execution_members"]) == 4, WAIT_S, "the job did not scale up")
    assert job.metrics()["executions_started"] == 2, "two additions within the delay must restart once"
    cancel_and_check_sequences(cluster, job, "two-added", ProcessingGuarantee.EXACTLY_ONCE)


def test_a_member_added_and_removed_within_the_delay_causes_no_restart(cluster, processes):
    job = start_streaming_job(cluster, "added-removed", ProcessingGuarantee.EXACTLY_ONCE)
    member = join_member(cluster, processes)
    member.kill()
    member.wait()
    wait_until(lambda: cluster.cluster().size == 2, WAIT_S, "the killed member is still listed")
    time.sleep(SCALE_UP_DELAY_MS / 1000 + 0.5)  # nothing may happen: wait past the delay on purpose
    assert job.metrics()["executions_started"] == 1
    cancel_and_check_sequences(cluster, job, "added-removed", ProcessingGuarantee.EXACTLY_ONCE)


# ------------------------------------------------------------------------------- leaving gracefully


def test_sigterm_to_a_member_moves_its_jobs_through_a_terminal_snapshot_then_it_leaves(cluster):
    job = start_job(cluster, "graceful", ProcessingGuarantee.EXACTLY_ONCE)
    leaving = cluster.cluster().members[1]
    os.kill(leaving.pid, signal.SIGTERM)
    wait_until(lambda: all(m.uuid != leaving.uuid for m in cluster.cluster().members), WAIT_S,
               "the member did not leave")
    assert job.metrics()["execution_members"] == [cluster.cluster().members[0].uuid]
    job.join(timeout=WAIT_S)
    check_output(cluster, "graceful", ProcessingGuarantee.EXACTLY_ONCE)


def test_jet_stop_member_moves_its_jobs_then_the_member_leaves(cluster, run_cli):
    job = start_job(cluster, "stop-member", ProcessingGuarantee.EXACTLY_ONCE)
    leaving = cluster.cluster().members[0]
    result = run_cli("stop", "--addresses", cluster.address, "--member", leaving.uuid, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"Member {leaving.uuid} left the cluster.\n"
    assert all(m.uuid != leaving.uuid for m in cluster.cluster().members)
    job.join(timeout=WAIT_S)
    check_output(cluster, "stop-member", ProcessingGuarantee.EXACTLY_ONCE)


def test_jet_stop_of_an_unknown_member_is_an_error(cluster, run_cli):
    result = run_cli("stop", "--addresses", cluster.address, "--member", "no-such-member")
    assert result.returncode == 1
    assert result.stderr == "ERROR: No member with uuid 'no-such-member' in the cluster\n"


# ------------------------------------------------------------------------------- split-brain protection


def test_a_protected_job_waits_below_its_quorum_and_runs_once_it_is_back(cluster, processes):
    join_member(cluster, processes)  # 3 members: the quorum is 2
    job = cluster.new_job(counting_dag("protected", COUNT),
                          JobConfig(name="protected", split_brain_protection=True, snapshot_interval_ms=200,
                                    processing_guarantee=ProcessingGuarantee.EXACTLY_ONCE))
    wait_until(lambda: job.status is JobStatus.RUNNING, WAIT_S, "the job did not start")
    wait_until(lambda: job.metrics()["last_snapshot_id"] >= 0, WAIT_S, "no snapshot was committed")
    for member in cluster.cluster().members[1:]:
        os.kill(member.pid, signal.SIGKILL)
    wait_until(lambda: job.status is JobStatus.NOT_RUNNING, WAIT_S, lambda: f"the job is {job.status}")
    time.sleep(0.5)  # it must stay waiting: one member is below the quorum of 2
    assert job.status is JobStatus.NOT_RUNNING
    join_member(cluster, processes)
    job.join(timeout=WAIT_S)
    check_output(cluster, "protected", ProcessingGuarantee.EXACTLY_ONCE)
