"""A job record's execution history and failure: kept bounded, saved, read back (also from
records written before the history existed)."""
import json

import pytest

from jetmq.config import JobConfig
from jetmq.job_status import JobStatus
from jetmq.master.jobs import EXECUTIONS_KEPT, ExecutionEnd, ExecutionRecord, JobRecord
from jetmq.master.quarantine import Quarantine
from jetmq.master.repository import JobRepository

pytestmark = pytest.mark.timeout(30)

JOB_ID = 0x1062_62BD_F040_5A8A
FAILURE = "Exception in ProcessorTasklet{map#0}: ValueError: bad item 7"


def job_with_executions(count: int) -> JobRecord:
    job = JobRecord(JOB_ID, JobConfig(name="j"), b"dag", 1_000)
    for index in range(count):
        job.execution = ExecutionRecord(100 + index, ("u1", "u2"), start_time=2_000 + index)
        job.execution_started(job.execution)
        if index < count - 1:
            job.execution_ended(ExecutionEnd.RESTARTED, f"restart {index}", at=3_000 + index)
    return job


def test_the_history_keeps_the_newest_executions_numbered_over_the_jobs_life():
    job = job_with_executions(EXECUTIONS_KEPT + 5)
    assert len(job.executions) == EXECUTIONS_KEPT
    assert [e["number"] for e in job.executions] == list(range(6, EXECUTIONS_KEPT + 6))
    assert job.executions[0] == {"number": 6, "execution_id": 105, "start_time": 2_005, "members": ["u1", "u2"],
                                 "end_time": 3_005, "ended": "RESTARTED", "reason": "restart 5"}
    assert job.executions[-1]["ended"] is None  # the current one runs


def test_an_execution_ends_once():
    job = job_with_executions(1)
    job.execution_ended(ExecutionEnd.FAILED, FAILURE, at=5_000)
    job.execution_ended(ExecutionEnd.CANCELLED, "cancelled", at=6_000)
    assert (job.executions[0]["ended"], job.executions[0]["reason"], job.executions[0]["end_time"]) == \
        ("FAILED", FAILURE, 5_000)


def test_a_new_master_ends_the_executions_the_old_one_left_running():
    job = job_with_executions(2)
    job.interrupted(ExecutionEnd.INTERRUPTED, "the master stopped while it ran")
    assert [(e["ended"], e["end_time"]) for e in job.executions] == [("RESTARTED", 3_000), ("INTERRUPTED", None)]


def test_the_failure_reason_and_the_history_survive_a_save_and_a_load(tmp_path):
    repository = JobRepository(tmp_path / "jobs", quarantine=Quarantine(tmp_path / "quarantine"))
    (tmp_path / "jobs").mkdir()
    job = job_with_executions(2)
    job.execution_ended(ExecutionEnd.FAILED, FAILURE, at=9_000)
    job.status, job.failure_text, job.completion_time = JobStatus.FAILED, FAILURE, 9_000
    repository.save(job)
    loaded, = repository.load_all()
    assert loaded.executions == job.executions
    assert loaded.failure_text == FAILURE
    reason = loaded.failure_reason
    assert (reason.exception, reason.message, reason.where) == ("ValueError", "bad item 7", "ProcessorTasklet{map#0}")


def test_a_record_written_before_the_history_existed_is_read_with_an_empty_one(tmp_path):
    repository = JobRepository(tmp_path / "jobs", quarantine=Quarantine(tmp_path / "quarantine"))
    (tmp_path / "jobs").mkdir()
    job = JobRecord(JOB_ID, JobConfig(name="old"), b"", 1_000, JobStatus.FAILED, "CancellationException", 2_000)
    record = job.to_json()
    del record["executions"]
    (tmp_path / "jobs" / f"{job.id_string}.json").write_text(json.dumps(record))
    loaded, = repository.load_all()
    assert (loaded.name, loaded.status, loaded.executions) == ("old", JobStatus.FAILED, [])
    assert loaded.failure_reason.exception == "CancellationException"


def test_damaged_entries_of_the_history_are_dropped_and_the_rest_kept(tmp_path):
    repository = JobRepository(tmp_path / "jobs", quarantine=Quarantine(tmp_path / "quarantine"))
    (tmp_path / "jobs").mkdir()
    job = job_with_executions(2)
    record = job.to_json()
    record["executions"] = [record["executions"][0], {"number": "2"}, "junk",
                            {**record["executions"][1], "members": [1]}, record["executions"][1]]
    (tmp_path / "jobs" / f"{job.id_string}.json").write_text(json.dumps(record))
    (tmp_path / "jobs" / f"{job.id_string}.dag").write_bytes(b"dag")
    loaded, = repository.load_all()
    assert loaded.executions == job.executions
