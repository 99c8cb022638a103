"""The text the ``jet`` command prints, byte for byte as Jet 4.0's JetCommandLine.

Pure functions: they take plain values and return lines without newlines;
the CLI prints them. Format strings are Jet's own (see docs/jet-compatibility.md §1).
Statuses and cluster states may be enums or strings: an enum prints its
``name``, as a Java enum prints in Jet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, tzinfo
from typing import NamedTuple

JOB_TABLE_FORMAT = "%-19s %-18s %-23s %s"
SNAPSHOT_HEADER_FORMAT = "%-23s %-15s %-24s %s"
SNAPSHOT_ROW_FORMAT = "{:<23} {:<15,} {:<24} {}"
"""Jet's row format ``"%-23s %-,15d %-24s %s"``: Python's ``%`` has no grouping flag."""
MEMBER_FORMAT = "%-24s %-19s %-8s %s"
"""Jet's ``"%-24s %-19s"`` (ADDRESS, UUID) with jetmq's PID and RESTARTS columns appended."""

MAX_JOB_NAME_WIDTH = 24
"""list-snapshots trims longer job names to 23 characters and a ``*`` (Jet's MAX_STR_LENGTH)."""
TRIMMED_MARK = "*"
NO_NAME = "N/A"
"""What list-jobs prints for an unnamed job."""
UNKNOWN_PID = "N/A"
"""What ``cluster`` prints for a member whose pid is not known."""
NO_JOB_NAME = "null"
"""What ``formatJob`` prints for an unnamed job: Jet concatenates a null name, which Java prints ``null``."""
STACK_TRACE_HINT = "To see the full stack trace, re-run with the -v/--verbosity option"

_MS_PER_S = 1000


class JobRow(NamedTuple):
    """One line of ``list-jobs``; any object with these attributes will do."""

    id_string: str
    status: object
    submission_time_ms: int
    name: str | None


class SnapshotRow(NamedTuple):
    """One line of ``list-snapshots``; any object with these attributes will do.

    ``job_name`` None (the job had no name) prints the job's id string instead.
    """

    name: str
    creation_time_ms: int
    size_bytes: int
    job_name: str | None
    job_id_string: str


class MemberRow(NamedTuple):
    """One line of ``cluster``; any object with these attributes will do.

    ``address`` prints with ``str()``; ``pid`` None (not known) prints ``N/A``.
    """

    address: object
    uuid: str
    pid: int | None
    restarts: int = 0  # replacements the master forked into this member's slot


def format_time(epoch_ms: int, tz: tzinfo | None = None) -> str:
    """Epoch milliseconds as Java's ``LocalDateTime.toString()`` prints them.

    ``2020-03-07T15:59:49.234``; ``.SSS`` is left out when the millis are 0,
    and ``:ss`` too when seconds and millis are both 0 (``2020-03-07T15:59``).
    Non-zero millis always print as 3 digits. ``tz`` None means local time.
    """
    seconds, millis = divmod(epoch_ms, _MS_PER_S)
    moment = datetime.fromtimestamp(seconds, tz)
    text = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:{moment.minute:02d}"
    if moment.second or millis:
        text += f":{moment.second:02d}"
        if millis:
            text += f".{millis:03d}"
    return text


def format_job(
    id_string: str, name: str | None, submission_time_ms: int, tz: tzinfo | None = None
) -> str:
    """Jet's ``formatJob``: ``id=<id>, name=<name>, submissionTime=<time>``.

    An unnamed job prints ``name=null``, as Jet's does (Java's string concatenation
    of a null ``job.getName()``; docs/jet-compatibility.md §1).
    """
    shown_name = NO_JOB_NAME if name is None else name
    return f"id={id_string}, name={shown_name}, submissionTime={format_time(submission_time_ms, tz)}"


def format_job_table(rows: Iterable[JobRow], tz: tzinfo | None = None) -> list[str]:
    """The ``list-jobs`` table: a header, then one line per row in the given order.

    The caller filters and sorts (Jet: newest submission first).
    """
    lines = [JOB_TABLE_FORMAT % ("ID", "STATUS", "SUBMISSION TIME", "NAME")]
    for row in rows:
        lines.append(JOB_TABLE_FORMAT % (
            row.id_string,
            _enum_name(row.status),
            format_time(row.submission_time_ms, tz),
            NO_NAME if row.name is None else row.name,
        ))
    return lines


def format_snapshot_table(
    rows: Iterable[SnapshotRow], full_names: bool, tz: tzinfo | None = None
) -> list[str]:
    """The ``list-snapshots`` table: a header, then the rows sorted by snapshot name.

    Sizes are grouped by thousands (Jet's ``%-,15d``). A job name longer than
    24 characters is cut to 23 and ``*`` unless ``full_names`` (``-F``).
    """
    lines = [SNAPSHOT_HEADER_FORMAT % ("TIME", "SIZE (bytes)", "JOB NAME", "SNAPSHOT NAME")]
    for row in sorted(rows, key=lambda r: r.name):
        job_name = row.job_id_string if row.job_name is None else row.job_name
        if not full_names:
            job_name = _shorten(job_name)
        lines.append(SNAPSHOT_ROW_FORMAT.format(
            format_time(row.creation_time_ms, tz), row.size_bytes, job_name, row.name
        ))
    return lines


def format_cluster(state: object, version: str, members: Sequence[MemberRow], notes: Sequence[str] = ()) \
        -> list[str]:
    """The ``cluster`` output: state, version, size, a blank line, then the members, and
    after another blank line the ``notes`` if there are any.

    The ADDRESS and UUID columns are Jet's ``"%-24s %-19s"``, so each line
    starts exactly as Jet's; jetmq appends PID and RESTARTS columns after one space.
    """
    lines = [
        f"State: {_enum_name(state)}",
        f"Version: {version}",
        f"Size: {len(members)}",
        "",
        MEMBER_FORMAT % ("ADDRESS", "UUID", "PID", "RESTARTS"),
    ]
    for member in members:
        pid = UNKNOWN_PID if member.pid is None else member.pid
        lines.append(MEMBER_FORMAT % (member.address, member.uuid, pid, getattr(member, "restarts", 0)))
    if notes:
        lines += ["", *notes]
    return lines


def format_error(message: str) -> list[str]:
    """What the CLI prints to stderr for a failed command without ``-v``."""
    return [f"ERROR: {message}", "", STACK_TRACE_HINT]


def _shorten(name: str) -> str:
    """Jet's ``shorten``: at most MAX_JOB_NAME_WIDTH characters, ``*`` marking a cut."""
    if len(name) <= MAX_JOB_NAME_WIDTH:
        return name
    return name[:MAX_JOB_NAME_WIDTH - 1] + TRIMMED_MARK


def _enum_name(value: object) -> str:
    """A Java enum prints its constant name; do the same for Python enums."""
    return str(getattr(value, "name", value))
