"""CLI output formats, byte for byte as Jet 4.0's JetCommandLine (docs/jet-compatibility.md §1)."""

import enum
import time
from datetime import datetime, timedelta, timezone

import pytest

from jetmq.formatting import (
    JobRow,
    MemberRow,
    SnapshotRow,
    format_cluster,
    format_error,
    format_job,
    format_job_table,
    format_snapshot_table,
    format_time,
)

pytestmark = pytest.mark.timeout(30)

UTC = timezone.utc
CET = timezone(timedelta(hours=1))


def ms(*fields: int, tz=UTC) -> int:
    """Epoch milliseconds of a wall-clock time given as year, month, ..., millis."""
    *head, millis = fields
    return int(datetime(*head, tzinfo=tz).timestamp()) * 1000 + millis


class Status(enum.Enum):
    RUNNING = 2
    SUSPENDED = 3


# ---- format_time -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields, expected",
    [
        ((2020, 3, 7, 15, 59, 49, 234), "2020-03-07T15:59:49.234"),
        ((2020, 3, 7, 15, 59, 49, 230), "2020-03-07T15:59:49.230"),
        ((2020, 3, 7, 15, 59, 49, 5), "2020-03-07T15:59:49.005"),
        ((2020, 3, 7, 15, 59, 49, 0), "2020-03-07T15:59:49"),
        ((2020, 3, 7, 15, 59, 0, 0), "2020-03-07T15:59"),
        ((2020, 3, 7, 15, 59, 0, 1), "2020-03-07T15:59:00.001"),
        ((2020, 3, 7, 0, 0, 0, 0), "2020-03-07T00:00"),
        ((1999, 12, 31, 23, 59, 59, 999), "1999-12-31T23:59:59.999"),
    ],
)
def test_time_prints_like_java_local_date_time(fields, expected):
    assert format_time(ms(*fields), tz=UTC) == expected


def test_time_is_shown_in_the_given_zone():
    assert format_time(ms(2020, 3, 7, 14, 59, 49, 234), tz=CET) == "2020-03-07T15:59:49.234"


def test_time_before_1970_prints_its_millis():
    assert format_time(-1, tz=UTC) == "1969-12-31T23:59:59.999"


@pytest.fixture
def local_zone_cet(monkeypatch):
    """Make the process's local time zone UTC+1 (POSIX TZ, no tz database needed)."""
    monkeypatch.setenv("TZ", "XXX-1")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_time_defaults_to_local_time(local_zone_cet):
    assert format_time(ms(2020, 3, 7, 14, 59, 49, 234)) == "2020-03-07T15:59:49.234"


# ---- format_job --------------------------------------------------------------------------


def test_job_prints_as_in_the_seed_page():
    line = format_job("0401-9f77-b9c0-0001", "hello-world", ms(2020, 3, 7, 15, 59, 49, 234), tz=UTC)
    assert line == "id=0401-9f77-b9c0-0001, name=hello-world, submissionTime=2020-03-07T15:59:49.234"


def test_unnamed_job_prints_null_as_jets_formatjob_does():
    line = format_job("0401-9f77-b9c0-0001", None, ms(2020, 3, 7, 15, 59, 0, 0), tz=UTC)
    assert line == "id=0401-9f77-b9c0-0001, name=null, submissionTime=2020-03-07T15:59"


# ---- format_job_table --------------------------------------------------------------------


def test_job_table_pads_columns_and_prints_na_for_unnamed_jobs():
    rows = [
        JobRow("0402-de21-7f00-0001", Status.RUNNING, ms(2020, 3, 8, 15, 12, 4, 893), "hello-world"),
        JobRow("0401-9f77-b9c0-0001", "SUSPENDED", ms(2020, 3, 7, 15, 59, 0, 0), None),
    ]
    assert format_job_table(rows, tz=UTC) == [
        "ID                  STATUS             SUBMISSION TIME         NAME",
        "0402-de21-7f00-0001 RUNNING            2020-03-08T15:12:04.893 hello-world",
        "0401-9f77-b9c0-0001 SUSPENDED          2020-03-07T15:59        N/A",
    ]


def test_job_table_keeps_the_callers_order():
    rows = [JobRow(f"0000-0000-0000-000{i}", "RUNNING", 0, f"job{i}") for i in (3, 1, 2)]
    assert [line.split()[-1] for line in format_job_table(rows, tz=UTC)[1:]] == ["job3", "job1", "job2"]


def test_job_table_with_no_jobs_is_the_header_only():
    assert format_job_table([]) == ["ID                  STATUS             SUBMISSION TIME         NAME"]


# ---- format_snapshot_table ---------------------------------------------------------------

SNAPSHOT_HEADER = "TIME                    SIZE (bytes)    JOB NAME                 SNAPSHOT NAME"
LONG_JOB_NAME = "a-very-long-job-name-that-overflows"  # 35 characters


def snapshot_rows():
    return [
        SnapshotRow("snap-b", ms(2020, 3, 7, 16, 0, 1, 5), 1_234_567, "hello-world", "0401-9f77-b9c0-0001"),
        SnapshotRow("snap-a", ms(2020, 3, 7, 16, 0, 0, 0), 999, LONG_JOB_NAME, "0401-9f77-b9c0-0002"),
        SnapshotRow("snap-c", ms(2020, 3, 7, 16, 0, 2, 100), 0, None, "0401-9f77-b9c0-0003"),
    ]


def test_snapshot_table_sorts_by_name_groups_sizes_and_trims_long_job_names():
    assert format_snapshot_table(snapshot_rows(), full_names=False, tz=UTC) == [
        SNAPSHOT_HEADER,
        "2020-03-07T16:00        999             a-very-long-job-name-th* snap-a",
        "2020-03-07T16:00:01.005 1,234,567       hello-world              snap-b",
        "2020-03-07T16:00:02.100 0               0401-9f77-b9c0-0003      snap-c",
    ]


def test_snapshot_table_with_full_names_keeps_long_job_names():
    lines = format_snapshot_table(snapshot_rows(), full_names=True, tz=UTC)
    assert lines[1] == f"2020-03-07T16:00        999             {LONG_JOB_NAME} snap-a"


@pytest.mark.parametrize("length, trimmed", [(23, False), (24, False), (25, True)])
def test_job_names_are_trimmed_only_beyond_24_characters(length, trimmed):
    job_name = "x" * length
    row = SnapshotRow("s", 0, 1, job_name, "0000-0000-0000-0001")
    shown = format_snapshot_table([row], full_names=False, tz=UTC)[1].split()[2]
    assert shown == ("x" * 23 + "*" if trimmed else job_name)


def test_snapshot_table_with_no_snapshots_is_the_header_only():
    assert format_snapshot_table([], full_names=False) == [SNAPSHOT_HEADER]


# ---- format_cluster ----------------------------------------------------------------------

UUID_1 = "1f6b8c2e-3a4d-4e5f-8a9b-0c1d2e3f4a5b"
UUID_2 = "2a7c9d3f-4b5e-4f60-9bac-1d2e3f4a5b6c"


def test_cluster_prints_state_version_size_and_members():
    members = [MemberRow("127.0.0.1:5702", UUID_1, 4242), MemberRow("127.0.0.1:5703", UUID_2, None)]
    assert format_cluster(Status.RUNNING, "0.1.0", members) == [
        "State: RUNNING",
        "Version: 0.1.0",
        "Size: 2",
        "",
        "ADDRESS                  UUID                PID      RESTARTS",
        f"127.0.0.1:5702           {UUID_1} 4242     0",
        f"127.0.0.1:5703           {UUID_2} N/A      0",
    ]


def test_cluster_prints_restarts_and_notes_after_the_members():
    members = [MemberRow("127.0.0.1:5702", UUID_1, 4242, 3)]
    assert format_cluster("ACTIVE", "0.1.0", members, ["member slot 1: not respawned: ..."])[5:] == [
        f"127.0.0.1:5702           {UUID_1} 4242     3",
        "",
        "member slot 1: not respawned: ...",
    ]


def test_cluster_member_columns_start_exactly_as_jets():
    members = [MemberRow("10.0.0.1:5701", UUID_1, 1), MemberRow("h:1", "short-uuid", 2)]
    lines = format_cluster("ACTIVE", "0.1.0", members)
    jet_lines = ["%-24s %-19s" % ("ADDRESS", "UUID")] + ["%-24s %-19s" % (m.address, m.uuid) for m in members]
    for ours, jets in zip(lines[4:], jet_lines):
        assert ours.startswith(jets + " ")


def test_cluster_accepts_any_object_with_address_uuid_and_pid():
    class Member:
        address, uuid, pid = "127.0.0.1:5702", UUID_1, 7

    assert format_cluster("ACTIVE", "0.1.0", [Member()])[-1] == f"127.0.0.1:5702           {UUID_1} 7        0"


# ---- format_error ------------------------------------------------------------------------


def test_error_prints_message_blank_line_and_verbosity_hint():
    assert format_error("No job with name or id 'x' was found") == [
        "ERROR: No job with name or id 'x' was found",
        "",
        "To see the full stack trace, re-run with the -v/--verbosity option",
    ]
