"""The text the ``jet`` command prints, byte for byte as Jet 4.0's JetCommandLine.

Pure functions: they take plain values and return lines without newlines;
the CLI prints them. Format strings are Jet's own (see docs/jet-compatibility.md §1).
Statuses and cluster states may be enums or strings: an enum prints its
``name``, as a Java enum prints in Jet.

``jet describe`` is jetmq's own (Jet 4.0 has none), and so are the JSON documents of
``--json``: their fields are listed in docs/operations.md, and change only by addition.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
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
    """One line of ``list-jobs``; any object with these attributes will do.

    The last two show only in ``list-jobs --json``."""

    id_string: str
    status: object
    submission_time_ms: int
    name: str | None
    completion_time_ms: int | None = None
    failure_text: str | None = None


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
    host: str | None = None  # (only in ``cluster --json``)
    forked: bool | None = None  # forked by the master, or joined (only in ``cluster --json``)


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


def format_json(document: object) -> list[str]:
    """A ``--json`` document as printed: indented by 2, keys in the document's order, ASCII only."""
    return json.dumps(document, indent=2).splitlines()


def jobs_document(rows: Iterable[JobRow]) -> dict:
    """``list-jobs --json``: the rows in the given order; times in epoch milliseconds."""
    return {"jobs": [{"id": row.id_string, "name": row.name, "status": _enum_name(row.status),
                      "submission_time": row.submission_time_ms,
                      "completion_time": getattr(row, "completion_time_ms", None),
                      "failure_text": getattr(row, "failure_text", None)} for row in rows]}


def cluster_document(state: object, version: str, cluster_name: str, members: Sequence[MemberRow],
                     notes: Sequence[str] = ()) -> dict:
    """``cluster --json``: what ``cluster`` prints, and each member's host and whether it was forked."""
    return {"state": _enum_name(state), "version": version, "cluster_name": cluster_name, "size": len(members),
            "members": [{"address": str(m.address), "uuid": m.uuid, "pid": m.pid,
                         "restarts": getattr(m, "restarts", 0), "host": getattr(m, "host", None),
                         "forked": getattr(m, "forked", None)} for m in members],
            "notes": list(notes)}


# ---- jet describe ------------------------------------------------------------------------

DESCRIBE_LABEL_WIDTH = 22
DESCRIBE_MEMBER_FORMAT = "  %-24s %-36s %s"
DESCRIBE_EXECUTION_FORMAT = "  %-4s %-19s %-23s %-23s %-7s %-11s %s"
DESCRIBE_FAILURE_FORMAT = "  %-23s %-40s %s"
DESCRIBE_VERTEX_FORMAT = "  {:<24} {:>12} {:>12} {:>12}  {}"
NOT_YET = "-"


class VertexRow(NamedTuple):
    """A vertex's line in ``jet describe``: its processors' metrics summed over every member.

    ``rate`` is items per second since the execution started (items out for a source,
    items in for any other vertex), None when not known; ``queue_capacity`` 0: no input queues.
    """

    vertex: str
    items_in: int
    items_out: int
    rate: float | None
    queue_size: int
    queue_capacity: int


def vertex_rows(measurements: Iterable[tuple[Mapping[str, str], int, int]]) -> tuple[list[VertexRow], int | None]:
    """The per-vertex rows of a job's metrics, in the order the vertices first appear, and the
    time (epoch ms) of the newest report; ``measurements`` are (tags, value, timestamp) as
    a member's report holds them (jetmq/core/metrics_context.py, decode_report)."""
    order: dict[str, None] = {}
    sums: dict[tuple[str, str], int] = {}
    per_member: dict[tuple[str, str, str], int] = {}  # (vertex, member, metric) -> its sum
    sources: set[str] = set()
    started: dict[str, int] = {}  # member -> executionStartTime
    reported: dict[str, int] = {}  # member -> the time of its report, or when its part ended
    ended: dict[str, int] = {}  # member -> executionCompletionTime, once its part has ended
    for tags, value, timestamp in measurements:
        metric, vertex, member = tags.get("metric"), tags.get("vertex"), tags.get("member", "")
        reported[member] = max(reported.get(member, timestamp), timestamp)
        if metric in ("executionStartTime", "executionCompletionTime") and vertex is None:
            if value > 0:  # -1: not yet
                (started if metric == "executionStartTime" else ended)[member] = value
            continue
        if vertex is None or "proc" not in tags or metric not in ("receivedCount", "emittedCount", "queuesSize",
                                                                    "queuesCapacity"):
            continue
        if metric == "emittedCount" and tags.get("ordinal") == "snapshot":
            continue  # state entries saved to snapshots, not items
        order.setdefault(vertex, None)
        sums[vertex, metric] = sums.get((vertex, metric), 0) + value
        if tags.get("source") == "true":
            sources.add(vertex)
        if metric in ("receivedCount", "emittedCount"):
            key = (vertex, member, metric)
            per_member[key] = per_member.get(key, 0) + value
    rows = []
    for vertex in order:
        counted = "emittedCount" if vertex in sources else "receivedCount"
        rate, known = 0.0, False
        for (v, member, metric), value in per_member.items():
            if v != vertex or metric != counted:
                continue
            if member not in started:
                continue
            elapsed_ms = ended.get(member, reported[member]) - started[member]
            if elapsed_ms > 0:
                rate += value * 1000 / elapsed_ms
                known = True
        rows.append(VertexRow(vertex, sums.get((vertex, "receivedCount"), 0), sums.get((vertex, "emittedCount"), 0),
                              rate if known else None, sums.get((vertex, "queuesSize"), 0),
                              sums.get((vertex, "queuesCapacity"), 0)))
    return rows, max(reported.values()) if reported else None


def format_queue_fill(size: int, capacity: int) -> str:
    """``12/2,048 (1%)``, or ``-`` for a vertex without input queues (a source)."""
    if capacity <= 0:
        return NOT_YET
    return f"{size:,}/{capacity:,} ({size * 100 // capacity}%)"


def format_vertex_table(rows: Iterable[VertexRow]) -> list[str]:
    """The per-vertex table of ``jet describe`` (indented, under its caption)."""
    lines = [DESCRIBE_VERTEX_FORMAT.format("VERTEX", "ITEMS IN", "ITEMS OUT", "RATE (/s)", "QUEUES")]
    for row in rows:
        rate = NOT_YET if row.rate is None else f"{row.rate:,.1f}"
        lines.append(DESCRIBE_VERTEX_FORMAT.format(row.vertex, f"{row.items_in:,}", f"{row.items_out:,}", rate,
                                                   format_queue_fill(row.queue_size, row.queue_capacity))
                     .rstrip())
    return lines


def format_failure(failure: Mapping | None) -> str | None:
    """A job's failure as ``describe`` shows it: ``<exception>: <message>``, or its text."""
    if failure is None:
        return None
    exception, message = failure.get("exception"), failure.get("message") or ""
    if exception is None:
        return failure.get("text") or message
    return f"{exception}: {message}" if message else exception


def format_job_description(doc: Mapping, tz: tzinfo | None = None) -> list[str]:
    """``jet describe``: the job's description document (the one ``--json`` prints) as text.

    A header of ``Label: value`` lines, then sections (members, executions, failures of
    the job's code, vertices), each only when it has something to show.
    """
    def line(label: str, value: object) -> str:
        return f"{label + ':':<{DESCRIBE_LABEL_WIDTH}}{value}"

    def time_of(epoch_ms: int | None) -> str:
        return NOT_YET if epoch_ms is None else format_time(epoch_ms, tz)

    lines = [line("Name", NO_NAME if doc["name"] is None else doc["name"]), line("ID", doc["id"]),
             line("Status", doc["status"]), line("Submission time", time_of(doc["submission_time"]))]
    if doc.get("completion_time") is not None:
        lines.append(line("Completion time", time_of(doc["completion_time"])))
    lines.append(line("Processing guarantee", doc["processing_guarantee"]))
    failure = doc.get("failure")
    if failure is not None:
        lines.append(line("Failure", format_failure(failure)))
        if failure.get("where"):
            lines.append(line("Failed in", failure["where"]))
    snapshot = "none" if doc["last_snapshot_id"] < 0 else str(doc["last_snapshot_id"])
    if doc.get("snapshot_in_progress", -1) >= 0:
        snapshot += f" (snapshot {doc['snapshot_in_progress']} in progress)"
    lines.append(line("Last snapshot", snapshot))
    executions = doc.get("executions", [])
    total = executions[-1]["number"] if executions else 0
    restarts = doc.get("restarts", 0)
    lines.append(line("Executions", f"{total} ({restarts} restart{'' if restarts == 1 else 's'})" if total else "none"))

    members = doc.get("members", [])
    if members:
        running = bool(executions) and executions[-1]["ended"] is None
        lines += ["", f"Members ({'of the current execution' if running else 'of the last execution'}):",
                  DESCRIBE_MEMBER_FORMAT % ("ADDRESS", "UUID", "PID")]
        for member in members:
            address = "(gone)" if member["address"] is None else member["address"]
            lines.append((DESCRIBE_MEMBER_FORMAT % (address, member["uuid"],
                                                    UNKNOWN_PID if member["pid"] is None else member["pid"])).rstrip())
    if executions:
        kept = "" if executions[0]["number"] == 1 else f"the last {len(executions)} of {total}, "
        lines += ["", f"Executions ({kept}oldest first):",
                  DESCRIBE_EXECUTION_FORMAT % ("#", "ID", "STARTED", "ENDED", "MEMBERS", "HOW", "WHY")]
        for execution in executions:
            how = execution["ended"] or "RUNNING"
            lines.append((DESCRIBE_EXECUTION_FORMAT % (
                execution["number"], execution["id"], time_of(execution["start_time"]),
                time_of(execution["end_time"]), len(execution["members"]), how,
                execution["reason"] or "")).rstrip())
    failures = doc.get("failures", [])
    if failures:
        lines += ["", "Failures of the job's code (oldest first):",
                  DESCRIBE_FAILURE_FORMAT % ("TIME", "THEN", "CAUSE")]
        lines += [DESCRIBE_FAILURE_FORMAT % (time_of(f["time"]), f["then"], f["cause"]) for f in failures]

    metrics = doc["metrics"]
    lines.append("")
    if metrics["vertices"]:
        lines.append(f"Vertices (metrics of {time_of(metrics['timestamp'])}, summed over the members):")
        lines += format_vertex_table(VertexRow(v["name"], v["items_in"], v["items_out"], v["rate"],
                                               v["queue_size"], v["queue_capacity"]) for v in metrics["vertices"])
    else:
        lines.append(line("Vertices", metrics["note"]))
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
