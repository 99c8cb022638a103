"""A master stopped (or killed) and started again on its data dir finds every job."""
import os
import signal

import pytest

import jetmq
from jetmq import JobConfig, JobStatus
from jetmq.testing import wait_until
from tests.integration.dags import batch_dag, streaming_dag

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

WAIT_S = 20


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
        assert len(list((tmp_path / "data" / "jobs").glob("*.json"))) == 2
