"""Processing guarantees on a real cluster: every key's count exact after each fault.

The job (tests/integration/dags.py) counts COUNT paced items into KEYS keys, with the
source offset and the counts in snapshots, and writes the counts when it completes:
exactly-once means every key shows exactly COUNT / KEYS; at-least-once means no key
shows less.
"""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import jetmq
from jetmq import JobConfig, JobStatus, ProcessingGuarantee
from jetmq.testing import sequence_dag, verify_sequences, wait_until
from tests.integration.dags import KEYS, counting_dag

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

COUNT = 10_000  # at 5 items/ms: about 2 s of work
WAIT_S = 30
EXACTLY_ONCE = ProcessingGuarantee.EXACTLY_ONCE
AT_LEAST_ONCE = ProcessingGuarantee.AT_LEAST_ONCE


def config(name, guarantee=EXACTLY_ONCE, **kwargs):
    return JobConfig(name=name, processing_guarantee=guarantee, snapshot_interval_ms=200, **kwargs)


def status_is(job, status):
    wait_until(lambda: job.status is status, WAIT_S, lambda: f"{job.name} is {job.status}, not {status.name}")


def a_snapshot_was_taken(cluster: jetmq.Cluster, job) -> None:
    jobs_dir = cluster.data_dir / "snapshots" / "jobs" / job.id_string
    wait_until(lambda: any((d / "manifest.json").exists() for d in jobs_dir.glob("*")), WAIT_S,
               "no snapshot was committed")


def assert_exactly_once(cluster, map_name):
    counts = cluster.get_map(map_name)
    assert counts == {key: COUNT // KEYS for key in range(KEYS)}, counts


def assert_at_least_once(cluster, map_name) -> int:
    counts = cluster.get_map(map_name)
    assert set(counts) == set(range(KEYS)) and all(c >= COUNT // KEYS for c in counts.values()), counts
    return sum(counts.values()) - COUNT  # duplicates


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    with jetmq.Cluster(members=2, data_dir=tmp_path / "data", heartbeat_interval_ms=100,
                       heartbeat_timeout_ms=1000, respawn=False) as instance:
        monkeypatch.setenv("JET_KEY_FILE", str(instance.key_file))  # for the CLIs a test runs
        yield instance


@pytest.mark.parametrize("guarantee", [EXACTLY_ONCE, AT_LEAST_ONCE])
def test_when_job_restarted_then_counts_are_exact(cluster, guarantee):
    job = cluster.new_job(counting_dag("restarted", COUNT), config("restarted", guarantee))
    status_is(job, JobStatus.RUNNING)
    a_snapshot_was_taken(cluster, job)
    job.restart()
    status_is(job, JobStatus.RUNNING)
    job.join(timeout=WAIT_S)
    assert_exactly_once(cluster, "restarted")  # a graceful restart replays nothing, whatever the guarantee


def test_when_job_suspended_then_resumed_then_counts_are_exact(cluster):
    job = cluster.new_job(counting_dag("suspended", COUNT), config("suspended"))
    status_is(job, JobStatus.RUNNING)
    a_snapshot_was_taken(cluster, job)
    job.suspend()
    status_is(job, JobStatus.SUSPENDED)
    job.resume()
    job.join(timeout=WAIT_S)
    assert_exactly_once(cluster, "suspended")


def test_when_resumed_on_a_different_number_of_members_then_state_is_redistributed(cluster):
    job = cluster.new_job(counting_dag("rescaled", COUNT), config("rescaled"))
    status_is(job, JobStatus.RUNNING)
    a_snapshot_was_taken(cluster, job)
    job.suspend()
    status_is(job, JobStatus.SUSPENDED)
    joined = subprocess.Popen([sys.executable, "-m", "jetmq.cli.start", "--join", cluster.address,
                               "--heartbeat-interval-ms", "100", "--heartbeat-timeout-ms", "1000"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: cluster.cluster().size == 3, WAIT_S, "the third member did not join")
        job.resume()
        job.join(timeout=WAIT_S)
        assert_exactly_once(cluster, "rescaled")
    finally:
        joined.kill()
        joined.wait()


def test_when_started_from_a_named_snapshot_then_counts_are_exact(cluster):
    first = cluster.new_job(counting_dag("unused", COUNT), config("exporter"))
    status_is(first, JobStatus.RUNNING)
    a_snapshot_was_taken(cluster, first)
    first.cancel_and_export_snapshot("half-way")
    status_is(first, JobStatus.FAILED)
    assert cluster.get_job_state_snapshot("half-way") is not None
    second = cluster.new_job(counting_dag("from-named", COUNT),
                             config("importer", initial_snapshot_name="half-way"))
    second.join(timeout=WAIT_S)
    assert_exactly_once(cluster, "from-named")


def test_a_job_that_completes_while_a_snapshot_is_taken_publishes_each_item_once(cluster):
    # Given exactly-once batch jobs whose sinks stage their output, snapshotting every 5 ms:
    # most complete while a snapshot is being saved or committed, which covers some of the
    # output the members hand over when they complete
    for i in range(5):
        name = f"completes-{i}"
        job = cluster.new_job(sequence_dag(name, keys=4, per_second=20_000, limit=4_000),
                              JobConfig(name=name, processing_guarantee=EXACTLY_ONCE, snapshot_interval_ms=5))
        # When each completes
        job.join(timeout=WAIT_S)
        # Then every item is in the list exactly once
        verdict = verify_sequences(cluster.get_list(name))
        assert (job.status, verdict.items, verdict.duplicated) == (JobStatus.COMPLETED, 4_000, 0), (name, verdict)


@pytest.mark.parametrize("guarantee", [EXACTLY_ONCE, AT_LEAST_ONCE])
def test_when_a_member_is_killed_then_the_job_restarts_from_the_last_snapshot(cluster, guarantee):
    job = cluster.new_job(counting_dag("member-killed", COUNT), config("member-killed", guarantee))
    status_is(job, JobStatus.RUNNING)
    a_snapshot_was_taken(cluster, job)
    os.kill(cluster.cluster().members[1].pid, signal.SIGKILL)
    job.join(timeout=WAIT_S)
    if guarantee is EXACTLY_ONCE:
        assert_exactly_once(cluster, "member-killed")
    else:
        assert_at_least_once(cluster, "member-killed")


@pytest.mark.parametrize("guarantee", [EXACTLY_ONCE, AT_LEAST_ONCE])
@pytest.mark.parametrize("phase", ["phase1", "phase2"])
def test_when_a_member_is_killed_during_a_snapshot_then_counts_are_exact(cluster, tmp_path, phase, guarantee):
    stall_dir = tmp_path / "stall"
    stall_dir.mkdir()
    job = cluster.new_job(counting_dag("killed-in-" + phase, COUNT, stall_dir=str(stall_dir), stall_in=phase),
                          config("killed-in-" + phase, guarantee))
    wait_until(lambda: (stall_dir / "stalled").exists(), WAIT_S, f"the counter never stalled in {phase}")
    os.kill(cluster.cluster().members[0].pid, signal.SIGKILL)  # member 0 is the stalled one
    (stall_dir / "release").touch()
    job.join(timeout=WAIT_S)
    if guarantee is EXACTLY_ONCE:
        assert_exactly_once(cluster, "killed-in-" + phase)
    else:
        assert_at_least_once(cluster, "killed-in-" + phase)


@pytest.mark.parametrize("guarantee", [EXACTLY_ONCE, AT_LEAST_ONCE])
def test_when_the_master_is_killed_then_a_new_master_resumes_from_the_last_snapshot(tmp_path, guarantee):
    data_dir = tmp_path / "data"
    first = jetmq.Cluster(members=2, data_dir=data_dir).start()
    try:
        job = first.new_job(counting_dag("master-killed", COUNT), config("master-killed", guarantee))
        status_is(job, JobStatus.RUNNING)
        a_snapshot_was_taken(first, job)
        os.kill(first.master_pid, signal.SIGKILL)
    finally:
        first.stop()
    with jetmq.Cluster(members=2, data_dir=data_dir) as second:
        again = second.get_job("master-killed")
        again.join(timeout=WAIT_S)
        if guarantee is EXACTLY_ONCE:
            assert_exactly_once(second, "master-killed")
        else:
            assert_at_least_once(second, "master-killed")


def _damage(snapshot_dir: Path, how: str) -> None:
    chunk = max(snapshot_dir.glob("m*.state"), key=lambda f: f.stat().st_size)  # a member's state
    data = chunk.read_bytes()
    if how == "flip":
        chunk.write_bytes(data[:10] + bytes([data[10] ^ 0xFF]) + data[11:])
    else:
        chunk.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_a_damaged_snapshot_is_detected_and_the_job_fails_naming_it(cluster, how):
    job = cluster.new_job(counting_dag("damaged", COUNT), config("damaged"))
    status_is(job, JobStatus.RUNNING)
    a_snapshot_was_taken(cluster, job)
    job.suspend()
    status_is(job, JobStatus.SUSPENDED)
    (snapshot_dir,) = [d for d in (cluster.data_dir / "snapshots" / "jobs" / job.id_string).iterdir()
                       if (d / "manifest.json").exists()]
    _damage(snapshot_dir, how)
    job.resume()
    status_is(job, JobStatus.FAILED)
    assert f"snapshot {snapshot_dir.name} of job {job.id_string} is damaged" in job.failure_text, job.failure_text
    assert "checksum" in job.failure_text
    # the cluster goes on: a new job of that name runs
    again = cluster.new_job(counting_dag("damaged-2", COUNT), config("damaged"))
    again.join(timeout=WAIT_S)
    assert_exactly_once(cluster, "damaged-2")


def test_when_the_master_is_killed_then_streamed_exactly_once_output_has_no_gap_and_no_duplicate(tmp_path):
    from jetmq.testing import sequence_dag, verify_sequences

    data_dir = tmp_path / "data"
    first = jetmq.Cluster(members=2, data_dir=data_dir).start()
    try:
        job = first.new_job(sequence_dag("sequences", keys=10, per_second=3000), config("streamed"))
        status_is(job, JobStatus.RUNNING)
        wait_until(lambda: job.metrics()["last_snapshot_id"] >= 2, WAIT_S, "no snapshots were committed")
        before = verify_sequences(first.get_list("sequences"))
        assert before.items > 0 and before.exactly_once, before
        os.kill(first.master_pid, signal.SIGKILL)
    finally:
        first.stop()
    with jetmq.Cluster(members=2, data_dir=data_dir) as second:
        again = second.get_job("streamed")
        status_is(again, JobStatus.RUNNING)
        start = again.metrics()["last_snapshot_id"]
        wait_until(lambda: again.metrics()["last_snapshot_id"] >= start + 2, WAIT_S, "no new snapshots")
        again.cancel()
        status_is(again, JobStatus.FAILED)
        after = verify_sequences(second.get_list("sequences"))
        assert after.items > before.items, "the restarted job did not go on"
        assert after.exactly_once, after


def test_a_files_sink_under_exactly_once_publishes_every_line_once_through_faults(cluster, tmp_path):
    from collections import Counter

    from jetmq.pipeline import Pipeline, Sinks, Sources

    out = tmp_path / "out"
    p = Pipeline()
    (p.read_from(Sources.item_stream(2000, _sequence_number))
      .with_ingestion_timestamps()
      .map(str)
      .write_to(Sinks.files(str(out))))
    job = cluster.new_job(p, config("files-2pc"))
    status_is(job, JobStatus.RUNNING)
    wait_until(lambda: job.metrics()["last_snapshot_id"] >= 1, WAIT_S, "no snapshot was committed")
    job.restart()
    status_is(job, JobStatus.RUNNING)
    start = job.metrics()["last_snapshot_id"]
    wait_until(lambda: job.metrics()["last_snapshot_id"] >= start + 2, WAIT_S, "no snapshots after the restart")
    os.kill(cluster.cluster().members[1].pid, signal.SIGKILL)
    wait_until(lambda: job.metrics()["executions_started"] == 3 and job.status is JobStatus.RUNNING, WAIT_S,
               "the job did not restart after the kill")
    start = job.metrics()["last_snapshot_id"]
    wait_until(lambda: job.metrics()["last_snapshot_id"] >= start + 2, WAIT_S, "no snapshots after the kill")
    job.cancel()
    status_is(job, JobStatus.FAILED)
    lines = Counter()
    for path in out.iterdir():
        if not path.name.startswith("."):  # hidden files are not published
            lines.update(int(line) for line in path.read_text().splitlines())
    assert lines, "nothing was published"
    assert max(lines.values()) == 1, f"duplicated lines: {[n for n, c in lines.items() if c > 1][:10]}"
    assert sorted(lines) == list(range(len(lines))), "a gap in the published lines"


def _sequence_number(_timestamp_ms, sequence):
    return sequence


class RestoreRecorder(jetmq.core.Processor):
    """A source that never ends, with state in snapshots; each restore appends a line to a file."""

    def __init__(self, record_path: str):
        self.record_path = record_path

    def complete(self):
        return False

    def save_to_snapshot(self):
        return self.outbox.offer_to_snapshot(jetmq.core.BroadcastKey(self.context.global_index), "state")

    def restore_from_snapshot(self, inbox):
        with open(self.record_path, "a") as record:
            for key, value in inbox.take():
                record.write(f"{key} {value}\n")


def test_an_exported_snapshot_of_a_job_without_guarantee_is_never_its_restore_point(cluster, tmp_path):
    # Given a job with no processing guarantee, whose processors have state
    record = tmp_path / "restores"
    dag = jetmq.core.DAG()
    dag.new_vertex("recorder", lambda: RestoreRecorder(str(record)))
    job = cluster.new_job(dag, JobConfig(name="no guarantee"))
    status_is(job, JobStatus.RUNNING)
    # When its state is exported, and it then restarts (forcefully: it has no guarantee)
    job.export_snapshot("exported-from-none")
    assert cluster.get_job_state_snapshot("exported-from-none") is not None
    job.restart()
    wait_until(lambda: job.metrics()["executions_started"] == 2 and job.status is JobStatus.RUNNING, WAIT_S,
               lambda: f"the job did not restart: {job.status}")
    # Then the new execution starts with empty state, as a job without guarantee does
    assert not record.exists(), record.read_text()
    assert job.metrics()["last_snapshot_id"] == -1
    # and the export is still there to start another job from
    again = cluster.new_job(dag, JobConfig(name="from the export", initial_snapshot_name="exported-from-none"))
    status_is(again, JobStatus.RUNNING)
    # (both processors saved a broadcast entry, and each processor restores every broadcast entry)
    wait_until(lambda: record.exists() and len(record.read_text().splitlines()) == 4, WAIT_S,
               lambda: f"the job started from the named snapshot restored: {record.read_text() if record.exists() else ''}")
