"""A self-healing cluster: lost members are replaced, and jobs whose code fails restart by strategy.

Real clusters; members are killed with SIGKILL, and a processor fails on purpose on
its first executions (a file counts them, since each execution unpickles it anew).
"""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import jetmq
from jetmq import JobConfig, JobStatus, ProcessingGuarantee, RestartStrategy
from jetmq.core import DAG, Edge, ItemsSourceProcessor, Processor
from jetmq.master.respawn import START_FAILURES_ALLOWED
from jetmq.testing import sequence_dag, verify_sequences, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

WAIT_S = 60
ITEMS = 2000


def jet(cluster, *args):
    return subprocess.run([sys.executable, "-m", "jetmq.cli.jet", "--addresses", cluster.address,
                           "--key-file", str(cluster.key_file), *args],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def healing_cluster(processes, tmp_path):
    with jetmq.Cluster(members=3, data_dir=tmp_path / "data", heartbeat_interval_ms=100, heartbeat_timeout_ms=1000,
                       scale_up_delay_ms=1000) as cluster:  # respawn is on by default
        processes.add(cluster.master_pid)
        yield cluster


def test_a_killed_member_is_replaced_and_the_job_comes_back_onto_three_members(healing_cluster):
    cluster = healing_cluster
    # Given an exactly-once job on three members
    job = cluster.new_job(sequence_dag("healed", keys=10, per_second=2000),
                          JobConfig(processing_guarantee=ProcessingGuarantee.EXACTLY_ONCE, snapshot_interval_ms=300))
    wait_until(lambda: len(job.metrics()["execution_members"]) == 3 and job.status is JobStatus.RUNNING, WAIT_S,
               "the job did not start on three members")
    victim = cluster.cluster().members[1]
    # When one of the members is killed
    os.kill(victim.pid, signal.SIGKILL)
    # Then a replacement joins within the backoff, and `jet cluster` counts the restart
    def replaced():
        members = cluster.cluster().members  # one answer: two could straddle the loss
        return len(members) == 3 and victim.uuid not in {m.uuid for m in members}
    wait_until(replaced, WAIT_S, lambda: f"members: {cluster.cluster().members}")
    lines = jet(cluster, "cluster").stdout.splitlines()
    assert lines[2] == "Size: 3" and lines[4].split() == ["ADDRESS", "UUID", "PID", "RESTARTS"]
    assert sorted(int(line.split()[3]) for line in lines[5:]) == [0, 0, 1]
    # and after the scale-up delay the job runs on three members again, with exact output
    # (the replacement may even join before the restart after the loss: then that restart takes it)
    def on_three_members_without_the_victim():
        members = job.metrics()["execution_members"]
        return len(members) == 3 and victim.uuid not in members and job.status is JobStatus.RUNNING
    wait_until(on_three_members_without_the_victim, WAIT_S, lambda: f"the job did not scale back up: {job.metrics()}")
    last = job.metrics()["last_snapshot_id"]
    wait_until(lambda: job.metrics()["last_snapshot_id"] > last + 1, WAIT_S, "no snapshot on three members")
    job.cancel()
    wait_until(lambda: job.status is JobStatus.FAILED, WAIT_S, "the job did not end")
    verdict = verify_sequences(cluster.get_list("healed"))
    assert verdict.items > 1000 and verdict.exactly_once, verdict


def test_a_member_that_dies_at_every_start_is_given_up_and_jet_cluster_says_why(healing_cluster):
    cluster = healing_cluster
    # Given a broken environment: new members cannot read the cluster's key any more
    hidden = cluster.key_file.with_name("cluster.key.hidden")
    os.replace(cluster.key_file, hidden)
    try:
        # When a member is killed, so that its replacements start into that environment
        os.kill(cluster.cluster().members[0].pid, signal.SIGKILL)
        # Then the master gives the slot up after a few tries, and says so
        def gave_up():
            result = jet_with(cluster, hidden, "cluster")
            return "not respawned" in result.stdout and result
        result = wait_until(gave_up, WAIT_S, "the master kept respawning a member that dies at every start")
    finally:
        os.replace(hidden, cluster.key_file)
    assert f"its last {START_FAILURES_ALLOWED} members died before joining" in result.stdout
    assert "Size: 2" in result.stdout
    assert "not respawned" in (cluster.data_dir / "logs" / "master.log").read_text()


def jet_with(cluster, key_file, *args):
    return subprocess.run([sys.executable, "-m", "jetmq.cli.jet", "--addresses", cluster.address,
                           "--key-file", str(key_file), *args], capture_output=True, text=True, timeout=60)


class FailsOnItsFirstExecutions(Processor):
    """Passes items on; on processor 0, raises in each of the first ``failing`` executions
    (a file counts the executions: each one unpickles the processor anew)."""

    def __init__(self, counter: str, failing: int):
        self.counter, self.failing = counter, failing

    def init_hook(self):
        self.fail = False
        if self.context.global_index == 0:
            with open(self.counter, "a+") as f:
                f.seek(0)
                executions = len(f.read().splitlines())
                f.write("started\n")
            self.fail = executions < self.failing

    def process(self, ordinal, inbox):
        if self.fail:
            raise RuntimeError("the data is not ready yet")
        while inbox and self.outbox.offer(inbox.peek()):
            inbox.poll()


class PutIntoMap(Processor):
    def process(self, ordinal, inbox):
        self.context.services.map_put_all("restarted-output", [(item, item) for item in inbox.take()])


def flaky_dag(counter: Path, failing: int) -> DAG:
    dag = DAG()
    source = dag.new_vertex("items", lambda: ItemsSourceProcessor(range(ITEMS)))
    flaky = dag.new_vertex("flaky", lambda: FailsOnItsFirstExecutions(str(counter), failing))
    sink = dag.new_vertex("map-sink", PutIntoMap)
    dag.edge(Edge.between(source, flaky).distributed())
    dag.edge(Edge.between(flaky, sink))
    return dag


def test_a_job_whose_code_fails_twice_restarts_by_its_strategy_and_completes(cluster, tmp_path):
    job = cluster.new_job(flaky_dag(tmp_path / "executions", failing=2),
                          JobConfig(name="flaky", restart_strategy=RestartStrategy.fixed_delay(3, 100)))
    job.join(timeout=WAIT_S)
    assert job.status is JobStatus.COMPLETED
    assert cluster.get_map("restarted-output") == {i: i for i in range(ITEMS)}
    failures = job.failures
    assert len(failures) == 2, failures
    assert all("RuntimeError: the data is not ready yet" in f["cause"] for f in failures)
    assert all(f["then"] == "restarted after 100 ms (fixed_delay(3, 100))" for f in failures)
    assert job.metrics()["executions_started"] == 3


def test_without_a_strategy_the_job_fails_at_once_as_in_jet(cluster, tmp_path):
    job = cluster.new_job(flaky_dag(tmp_path / "executions", failing=1), JobConfig(name="fails-once"))
    with pytest.raises(jetmq.JobFailedError, match="the data is not ready yet"):
        job.join(timeout=WAIT_S)
    assert [f["then"] for f in job.failures] == ["failed"]


def test_suspend_on_failure_keeps_the_job_suspended_and_resume_completes_it(cluster, tmp_path):
    job = cluster.new_job(flaky_dag(tmp_path / "executions", failing=1),
                          JobConfig(name="suspends", suspend_on_failure=True))
    wait_until(lambda: job.status is JobStatus.SUSPENDED, WAIT_S, lambda: f"the job is {job.status}")
    assert "the data is not ready yet" in job.failure_text
    assert [f["then"] for f in job.failures] == ["suspended"]
    result = subprocess.run([sys.executable, "-m", "jetmq.cli.jet", "--addresses", cluster.address, "resume",
                             "suspends"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    job.join(timeout=WAIT_S)
    assert job.status is JobStatus.COMPLETED
    assert cluster.get_map("restarted-output") == {i: i for i in range(ITEMS)}
