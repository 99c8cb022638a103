"""jetmq's own output formats: `jet describe` (text and document), the per-vertex metrics
table, and the `--json` documents of list-jobs, describe and cluster. Exact strings."""
import json
from datetime import datetime, timezone

import pytest

from jetmq import protocol as p
from jetmq.cli.describe import description_document
from jetmq.formatting import (
    JobRow,
    MemberRow,
    VertexRow,
    cluster_document,
    format_job_description,
    format_json,
    format_queue_fill,
    format_vertex_table,
    jobs_document,
    vertex_rows,
)
from jetmq.master.jobs import FailureReason, parse_failure

pytestmark = pytest.mark.timeout(30)

UTC = timezone.utc
UUID_1 = "8d9c3b1e-4a4b-4bd5-9a8e-6f0f7f3b2a11"
UUID_2 = "0f6b1c2d-9e8f-4a7b-8c6d-5e4f3a2b1c0d"


def ms(*fields: int) -> int:
    *head, millis = fields
    return int(datetime(*head, tzinfo=UTC).timestamp()) * 1000 + millis


T0 = ms(2024, 5, 1, 10, 0, 0, 123)


# ---- failure texts taken apart ------------------------------------------------------------


@pytest.mark.parametrize("text, reason", [
    ("Exception in ProcessorTasklet{map#0}: ValueError: bad item 7",
     FailureReason("ValueError", "bad item 7", "ProcessorTasklet{map#0}")),
    ("Exception in ProcessorTasklet{map}: KeyError: 'k: v'",
     FailureReason("KeyError", "'k: v'", "ProcessorTasklet{map}")),
    ("Exception in ProcessorTasklet{map}: RuntimeError: ", FailureReason("RuntimeError", "", "ProcessorTasklet{map}")),
    ("Exception in initialising the job: ImportError: no module\nnamed x",
     FailureReason("ImportError", "no module\nnamed x", "initialising the job")),
    ("CancellationException", FailureReason("CancellationException", "")),
    ("TopologyChangedException: member u (h:1) left the cluster",
     FailureReason("TopologyChangedException", "member u (h:1) left the cluster")),
    ("the job's output could not be published: disk full",
     FailureReason(None, "the job's output could not be published: disk full")),
    ('snapshot "s" doesn\'t exist or is damaged', FailureReason(None, 'snapshot "s" doesn\'t exist or is damaged')),
])
def test_a_failure_text_gives_its_exception_type_message_and_place(text, reason):
    assert parse_failure(text) == reason


# ---- the per-vertex rows ------------------------------------------------------------------


def measurement(metric, value, ts, member="m1", **tags):
    return ({"job": "j", "exec": "e", "member": member, "metric": metric, **tags}, value, ts)


def processor(metric, value, ts, vertex, proc, member="m1", **tags):
    return measurement(metric, value, ts, member, vertex=vertex, proc=str(proc), procType="P", **tags)


def test_vertex_rows_sum_processors_and_members_and_measure_rates_since_the_execution_started():
    started, reported = T0, T0 + 2_000  # 2 s of running on each member
    found = [
        measurement("executionStartTime", started, reported, "m1"),
        measurement("executionCompletionTime", -1, reported, "m1"),
        measurement("executionStartTime", started, reported, "m2"),
        measurement("executionCompletionTime", -1, reported, "m2"),
        processor("emittedCount", 1000, reported, "source", 0, "m1", source="true", ordinal="0"),
        processor("emittedCount", 50, reported, "source", 0, "m1", source="true", ordinal="snapshot"),
        processor("queuesSize", 0, reported, "source", 0, "m1", source="true"),
        processor("queuesCapacity", 0, reported, "source", 0, "m1", source="true"),
        processor("emittedCount", 3000, reported, "source", 1, "m2", source="true", ordinal="0"),
        processor("receivedCount", 1500, reported, "sink", 0, "m1", sink="true", ordinal="0"),
        processor("receivedCount", 2500, reported, "sink", 1, "m2", sink="true", ordinal="0"),
        processor("queuesSize", 10, reported, "sink", 0, "m1", sink="true"),
        processor("queuesCapacity", 1024, reported, "sink", 0, "m1", sink="true"),
        processor("queuesSize", 30, reported, "sink", 1, "m2", sink="true"),
        processor("queuesCapacity", 1024, reported, "sink", 1, "m2", sink="true"),
        # not items of a processor: left out
        measurement("distributedItemsOut", 999, reported, "m1", vertex="source", ordinal="0", destinationAddress="a"),
        measurement("snapshotKeys", 7, reported, "m1", vertex="sink"),
    ]
    rows, newest = vertex_rows(found)
    assert newest == reported
    assert rows == [VertexRow("source", 0, 4000, 2000.0, 0, 0), VertexRow("sink", 4000, 0, 2000.0, 40, 2048)]


def test_a_member_whose_part_ended_counts_its_rate_up_to_its_end_and_an_unstarted_one_has_none():
    found = [
        measurement("executionStartTime", T0, T0 + 9_000, "m1"),
        measurement("executionCompletionTime", T0 + 1_000, T0 + 9_000, "m1"),
        processor("emittedCount", 500, T0 + 9_000, "source", 0, "m1", source="true", ordinal="0"),
        measurement("executionStartTime", -1, T0 + 9_000, "m2"),
        processor("receivedCount", 5, T0 + 9_000, "other", 0, "m2", ordinal="0"),
    ]
    rows, _ = vertex_rows(found)
    assert rows == [VertexRow("source", 0, 500, 500.0, 0, 0), VertexRow("other", 5, 0, None, 0, 0)]


def test_no_measurements_give_no_rows():
    assert vertex_rows([]) == ([], None)


@pytest.mark.parametrize("size, capacity, shown", [(0, 0, "-"), (12, 2048, "12/2,048 (0%)"),
                                                   (1024, 2048, "1,024/2,048 (50%)"), (7, 7, "7/7 (100%)")])
def test_queue_fill(size, capacity, shown):
    assert format_queue_fill(size, capacity) == shown


def test_vertex_table():
    rows = [VertexRow("sequence-source", 0, 2020, 1001.49, 0, 0),
            VertexRow("committing-list-sink", 2020, 0, None, 3, 4096)]
    assert format_vertex_table(rows) == [
        "  VERTEX                       ITEMS IN    ITEMS OUT    RATE (/s)  QUEUES",
        "  sequence-source                     0        2,020      1,001.5  -",
        "  committing-list-sink            2,020            0            -  3/4,096 (0%)",
    ]


# ---- --json of list-jobs and cluster ------------------------------------------------------


def test_list_jobs_document():
    rows = [JobRow("0402-de21-7f00-0001", "RUNNING", T0, "hello-world"),
            JobRow("0401-9f77-b9c0-0001", "FAILED", T0 - 1, None, T0 + 5, "CancellationException")]
    assert format_json(jobs_document(rows)) == [
        '{',
        '  "jobs": [',
        '    {',
        '      "id": "0402-de21-7f00-0001",',
        '      "name": "hello-world",',
        '      "status": "RUNNING",',
        f'      "submission_time": {T0},',
        '      "completion_time": null,',
        '      "failure_text": null',
        '    },',
        '    {',
        '      "id": "0401-9f77-b9c0-0001",',
        '      "name": null,',
        '      "status": "FAILED",',
        f'      "submission_time": {T0 - 1},',
        f'      "completion_time": {T0 + 5},',
        '      "failure_text": "CancellationException"',
        '    }',
        '  ]',
        '}',
    ]


def test_an_empty_list_jobs_document():
    assert format_json(jobs_document([])) == ['{', '  "jobs": []', '}']


def test_cluster_document():
    members = [MemberRow("127.0.0.1:5702", UUID_1, 4242, 1, "host-a", True), MemberRow("h:1", UUID_2, None)]
    assert cluster_document("ACTIVE", "0.1.0", "jet", members, ["a note"]) == {
        "state": "ACTIVE", "version": "0.1.0", "cluster_name": "jet", "size": 2,
        "members": [{"address": "127.0.0.1:5702", "uuid": UUID_1, "pid": 4242, "restarts": 1, "host": "host-a",
                     "forked": True},
                    {"address": "h:1", "uuid": UUID_2, "pid": None, "restarts": 0, "host": None, "forked": None}],
        "notes": ["a note"]}


def test_json_output_is_ascii():
    assert format_json({"name": "café"}) == ['{', '  "name": "caf\\u00e9"', '}']


# ---- jet describe --------------------------------------------------------------------------

JOB_ID = 0x1062_62BD_F040_5A8A
EXEC_1, EXEC_2 = 0x1062_62BD_F100_5A8A, 0x1062_62BE_0000_5A8A
CONFIG = {"name": "boom", "processing_guarantee": "EXACTLY_ONCE", "metrics_enabled": True,
          "store_metrics_after_job_completion": False}
FAILURE = "Exception in ProcessorTasklet{map#0}: ValueError: bad item 7"


def summary(status="FAILED", failure_text=FAILURE, completion_time=T0 + 9_000, failures=(), last_snapshot_id=3,
            snapshot_in_progress=-1) -> p.JobSummary:
    return p.JobSummary(JOB_ID, "boom", status, T0, completion_time, failure_text, 2, (), last_snapshot_id,
                        snapshot_in_progress, failures)


def description(job: p.JobSummary, executions=(), members=(), config=CONFIG, metrics=p.pack_serialized([]),
                reason=FailureReason("ValueError", "bad item 7", "ProcessorTasklet{map#0}")) -> p.JobDescription:
    return p.JobDescription(job, config, reason.exception if reason else None, reason.message if reason else None,
                            reason.where if reason else None, tuple(executions), tuple(members), 500, metrics)


RESTARTED = p.ExecutionInfo(1, EXEC_1, T0 + 10, T0 + 4_000, (UUID_1, UUID_2), "RESTARTED",
                            f"member {UUID_2} left the cluster")
FAILED = p.ExecutionInfo(2, EXEC_2, T0 + 4_100, T0 + 9_000, (UUID_1,), "FAILED", FAILURE)


def test_the_description_of_a_failed_job():
    reply = description(summary(failures=(p.FailureInfo(T0 + 9_000, FAILURE, "failed"),)),
                        executions=[RESTARTED, FAILED], members=[p.DescribedMember(UUID_1, "127.0.0.1:5702", 4242)])
    assert format_job_description(description_document(reply, []), tz=UTC) == [
        "Name:                 boom",
        "ID:                   1062-62bd-f040-5a8a",
        "Status:               FAILED",
        "Submission time:      2024-05-01T10:00:00.123",
        "Completion time:      2024-05-01T10:00:09.123",
        "Processing guarantee: EXACTLY_ONCE",
        "Failure:              ValueError: bad item 7",
        "Failed in:            ProcessorTasklet{map#0}",
        "Last snapshot:        3",
        "Executions:           2 (1 restart)",
        "",
        "Members (of the last execution):",
        "  ADDRESS                  UUID                                 PID",
        f"  127.0.0.1:5702           {UUID_1} 4242",
        "",
        "Executions (oldest first):",
        "  #    ID                  STARTED                 ENDED                   MEMBERS HOW         WHY",
        f"  1    1062-62bd-f100-5a8a 2024-05-01T10:00:00.133 2024-05-01T10:00:04.123 2       RESTARTED   "
        f"member {UUID_2} left the cluster",
        f"  2    1062-62be-0000-5a8a 2024-05-01T10:00:04.223 2024-05-01T10:00:09.123 1       FAILED      {FAILURE}",
        "",
        "Failures of the job's code (oldest first):",
        "  TIME                    THEN                                     CAUSE",
        f"  2024-05-01T10:00:09.123 failed                                   {FAILURE}",
        "",
        "Vertices:             no metrics: the job has finished and did not keep them "
        "(store_metrics_after_job_completion=False)",
    ]


def test_the_description_of_a_running_job_with_metrics():
    running = p.ExecutionInfo(3, EXEC_2, T0, None, (UUID_1, UUID_2), None, None)
    reply = description(summary("RUNNING", None, None, last_snapshot_id=-1, snapshot_in_progress=0),
                        executions=[running], reason=None,
                        members=[p.DescribedMember(UUID_1, "127.0.0.1:5702", 4242),
                                 p.DescribedMember(UUID_2, None, None)])
    found = [measurement("executionStartTime", T0, T0 + 1_000),
             processor("emittedCount", 1234, T0 + 1_000, "src", 0, source="true", ordinal="0"),
             processor("receivedCount", 1234, T0 + 1_000, "sink", 0, sink="true", ordinal="0"),
             processor("queuesSize", 1, T0 + 1_000, "sink", 0, sink="true"),
             processor("queuesCapacity", 1024, T0 + 1_000, "sink", 0, sink="true")]
    document = description_document(reply, found)
    assert format_job_description(document, tz=UTC) == [
        "Name:                 boom",
        "ID:                   1062-62bd-f040-5a8a",
        "Status:               RUNNING",
        "Submission time:      2024-05-01T10:00:00.123",
        "Processing guarantee: EXACTLY_ONCE",
        "Last snapshot:        none (snapshot 0 in progress)",
        "Executions:           3 (0 restarts)",
        "",
        "Members (of the current execution):",
        "  ADDRESS                  UUID                                 PID",
        f"  127.0.0.1:5702           {UUID_1} 4242",
        f"  (gone)                   {UUID_2} N/A",
        "",
        "Executions (the last 1 of 3, oldest first):",
        "  #    ID                  STARTED                 ENDED                   MEMBERS HOW         WHY",
        "  3    1062-62be-0000-5a8a 2024-05-01T10:00:00.123 -                       2       RUNNING",
        "",
        "Vertices (metrics of 2024-05-01T10:00:01.123, summed over the members):",
        "  VERTEX                       ITEMS IN    ITEMS OUT    RATE (/s)  QUEUES",
        "  src                                 0        1,234      1,234.0  -",
        "  sink                            1,234            0      1,234.0  1/1,024 (0%)",
    ]
    assert document["metrics"] == {"state": "reported", "note": None, "interval_ms": 500, "timestamp": T0 + 1_000,
                                   "vertices": [{"name": "src", "items_in": 0, "items_out": 1234, "rate": 1234.0,
                                                 "queue_size": 0, "queue_capacity": 0},
                                                {"name": "sink", "items_in": 1234, "items_out": 0, "rate": 1234.0,
                                                 "queue_size": 1, "queue_capacity": 1024}]}


def test_the_description_document_of_a_failed_job():
    reply = description(summary(), executions=[RESTARTED, FAILED],
                        members=[p.DescribedMember(UUID_1, "127.0.0.1:5702", 4242)])
    document = json.loads("\n".join(format_json(description_document(reply, []))))
    assert document == {
        "id": "1062-62bd-f040-5a8a", "name": "boom", "status": "FAILED", "submission_time": T0,
        "completion_time": T0 + 9_000, "processing_guarantee": "EXACTLY_ONCE", "config": CONFIG,
        "failure": {"text": FAILURE, "exception": "ValueError", "message": "bad item 7",
                    "where": "ProcessorTasklet{map#0}"},
        "failures": [], "executions_started": 2, "restarts": 1,
        "executions": [
            {"number": 1, "id": "1062-62bd-f100-5a8a", "start_time": T0 + 10, "end_time": T0 + 4_000,
             "members": [UUID_1, UUID_2], "ended": "RESTARTED", "reason": f"member {UUID_2} left the cluster"},
            {"number": 2, "id": "1062-62be-0000-5a8a", "start_time": T0 + 4_100, "end_time": T0 + 9_000,
             "members": [UUID_1], "ended": "FAILED", "reason": FAILURE}],
        "last_snapshot_id": 3, "snapshot_in_progress": -1,
        "members": [{"uuid": UUID_1, "address": "127.0.0.1:5702", "pid": 4242}], "dag": None,
        "metrics": {"state": "not_kept", "interval_ms": 500, "timestamp": None, "vertices": [],
                    "note": "no metrics: the job has finished and did not keep them "
                            "(store_metrics_after_job_completion=False)"},
    }


@pytest.mark.parametrize("status, config, state, note", [
    ("RUNNING", {**CONFIG, "metrics_enabled": False}, "disabled",
     "no metrics: they are disabled for this job (metrics_enabled=False)"),
    ("RUNNING", CONFIG, "none", "no metrics reported yet (the members report every 0.5 s)"),
    ("SUSPENDED", CONFIG, "none", "no metrics: no execution of the job runs (SUSPENDED)"),
    ("COMPLETED", {**CONFIG, "store_metrics_after_job_completion": True}, "none",
     "no metrics: none were kept (a master keeps them in memory only)"),
])
def test_why_a_description_has_no_metrics(status, config, state, note):
    document = description_document(description(summary(status, None), config=config, reason=None), [])
    assert (document["metrics"]["state"], document["metrics"]["note"]) == (state, note)
    assert format_job_description(document, tz=UTC)[-1] == f"Vertices:             {note}"


def test_an_unnamed_job_without_executions_and_an_old_history():
    old = p.ExecutionInfo(41, EXEC_1, T0, T0 + 1, (UUID_1,), "INTERRUPTED", "the master stopped while it ran")
    reply = description(p.JobSummary(JOB_ID, None, "NOT_RUNNING", T0, None, None, 0, (), -1, -1, ()),
                        executions=[old], reason=None)
    lines = format_job_description(description_document(reply, []), tz=UTC)
    assert lines[0] == "Name:                 N/A"
    assert "Executions:           41 (0 restarts)" in lines
    assert "Executions (the last 1 of 41, oldest first):" in lines
    assert lines[-1] == "Vertices:             no metrics: no execution of the job runs (NOT_RUNNING)"
