"""A master stopped (or killed) and started again on its data dir finds every job."""
import os
import signal

import pytest

import jetmq
from jetmq import JobConfig, JobStatus
from jetmq.ids import id_to_string
from jetmq.testing import wait_until
from jetmq.core import DAG, Edge, ItemsSourceProcessor, Processor
from tests.integration.dags import batch_dag, streaming_dag

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

WAIT_S = 20


class MapWriter(Processor):
    """Puts (item, item) into a named map, at once (no guarantee)."""

    def __init__(self, name: str):
        self.name = name

    def process(self, ordinal, inbox):
        self.context.services.map_put_all(self.name, [(item, item) for item in inbox.take()])


def map_writer_dag(name: str, items) -> DAG:
    """A batch job that writes its items into a named map, one record of the log per batch."""
    dag = DAG()
    items = list(items)
    source = dag.new_vertex("items", lambda: ItemsSourceProcessor(items))
    dag.edge(Edge.between(source, dag.new_vertex("map-writer", lambda: MapWriter(name))))
    return dag


def running(job):
    wait_until(lambda: job.status is JobStatus.RUNNING, WAIT_S, lambda: f"{job.name} is {job.status}")


@pytest.mark.parametrize("how", ["stop", "kill -9"])
def test_a_restarted_master_brings_every_job_back_in_its_status(tmp_path, how):
    data_dir = tmp_path / "data"
    first = jetmq.Cluster(members=2, data_dir=data_dir).start()
    try:
        completed = first.new_job(batch_dag(), JobConfig(name="completed"))
        completed.join(timeout=WAIT_S)
        cancelled = first.new_job(streaming_dag(), JobConfig(name="cancelled"))
        running(cancelled)
        cancelled.cancel()
        wait_until(lambda: cancelled.status is JobStatus.FAILED, WAIT_S, "not cancelled")
        suspended = first.new_job(streaming_dag(), JobConfig(name="suspended"))
        running(suspended)
        suspended.suspend()
        wait_until(lambda: suspended.status is JobStatus.SUSPENDED, WAIT_S, "not suspended")
        still_running = first.new_job(streaming_dag(), JobConfig(name="running"))
        running(still_running)
        ids = {j.name: j.id for j in (completed, cancelled, suspended, still_running)}
        if how == "kill -9":
            os.kill(first.master_pid, signal.SIGKILL)
    finally:
        first.stop()

    with jetmq.Cluster(members=2, data_dir=data_dir) as second:
        jobs = {j.name: j for j in second.get_jobs()}
        assert {name: job.id for name, job in jobs.items()} == ids
        assert jobs["completed"].status is JobStatus.COMPLETED
        assert jobs["cancelled"].status is JobStatus.FAILED
        assert jobs["cancelled"].failure_text == "CancellationException"
        assert jobs["suspended"].status is JobStatus.SUSPENDED
        running(jobs["running"])
        assert jobs["running"].submission_time == still_running.submission_time
        jobs["suspended"].resume()
        running(jobs["suspended"])
        for job in (jobs["running"], jobs["suspended"]):
            job.cancel()


def test_finished_jobs_beyond_the_configured_maximum_are_forgotten_oldest_first(tmp_path):
    with jetmq.Cluster(members=1, data_dir=tmp_path / "data", max_job_results=2) as cluster:
        ids = []
        for _ in range(3):
            job = cluster.new_job(batch_dag())
            job.join(timeout=WAIT_S)
            ids.append(job.id)
        assert [j.id for j in cluster.get_jobs()] == [ids[2], ids[1]], "only the newest two finished jobs stay"
        # the master deletes the forgotten record on its I/O thread, off its loop: join() may return first
        records = lambda: sorted(path.stem for path in (tmp_path / "data" / "jobs").glob("*.json"))  # noqa: E731
        kept = sorted(id_to_string(i) for i in ids[1:])
        wait_until(lambda: records() == kept, WAIT_S, lambda: f"job records {records()}, not only {kept}")


def test_a_master_starts_on_a_damaged_data_dir_and_lists_the_job_it_could_not_read(tmp_path):
    # Given a data dir with two jobs and a named map
    data_dir = tmp_path / "data"
    with jetmq.Cluster(members=2, data_dir=data_dir) as first:
        healthy = first.new_job(streaming_dag(), JobConfig(name="healthy"))
        running(healthy)
        damaged = first.new_job(streaming_dag(), JobConfig(name="damaged"))
        running(damaged)
        first.new_job(map_writer_dag("kept", range(5)), JobConfig(name="writer")).join(timeout=WAIT_S)
        first.new_job(map_writer_dag("kept", range(5, 10)), JobConfig(name="writer")).join(timeout=WAIT_S)
        ids = {"healthy": healthy.id, "damaged": damaged.id}
    # When one job record is cut in half and a bit of the structures log flips in its first record
    record = data_dir / "jobs" / f"{damaged.id_string}.json"
    record.write_text(record.read_text()[:40])
    log = data_dir / "structures.log"
    data = bytearray(log.read_bytes())
    data[12] ^= 0x01
    log.write_bytes(bytes(data))
    # Then the master starts, runs the healthy job, lists the damaged one as FAILED with the reason
    with jetmq.Cluster(members=2, data_dir=data_dir) as second:
        jobs = {j.id: j for j in second.get_jobs()}
        running(jobs[ids["healthy"]])
        lost = jobs[ids["damaged"]]  # its name was in the half that is gone
        assert lost.status is JobStatus.FAILED and lost.name is None
        assert "the job's record could not be read" in lost.failure_text
        # and keeps the map entries of the log's good record (the second writer's), dropping none after the damage
        assert second.get_map("kept") == {i: i for i in range(5, 10)}
    quarantined = sorted(p.name for p in (data_dir / "quarantine").iterdir())
    assert any(name.endswith(f"{damaged.id_string}.json") for name in quarantined), quarantined
    assert any(name.endswith("structures.log") for name in quarantined), quarantined
