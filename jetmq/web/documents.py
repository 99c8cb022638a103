"""The JSON documents of `jet list-jobs --json`, `jet describe --json` and `jet cluster --json`,
built from the master's replies: the command line prints them, the HTTP API serves them.

Their fields are listed in docs/operations.md. Reading commands import this module, so it
imports nothing beyond the protocol and the formatting helpers; a job's metrics reports
are decoded (lz4, jetmq.core's metrics modules) only when there are some.
"""
from __future__ import annotations

from jetmq import protocol as p
from jetmq.formatting import JobRow, MemberRow, cluster_document, jobs_document, vertex_rows
from jetmq.ids import id_from_string, id_to_string
from jetmq.job_status import JobStatus


class NoSuchJob(LookupError):
    """No job of the name or id asked for."""


def job_rows(reply: p.JobsReply, include_finished: bool) -> list[JobRow]:
    """The rows of `jet list-jobs` (``-a``: ``include_finished``): newest first, and among jobs
    submitted in the same millisecond the active ones first."""
    rows = [JobRow(id_to_string(s.job_id), JobStatus[s.status], s.submission_time, s.name, s.completion_time,
                   s.failure_text) for s in reply.jobs]
    rows = [r for r in rows if include_finished or not r.status.is_terminal]
    rows.sort(key=lambda r: (-r.submission_time_ms, r.status.is_terminal))
    return rows


def list_jobs_document(reply: p.JobsReply, include_finished: bool) -> dict:
    """What `jet list-jobs [-a] --json` prints, from the reply to ``GetJobs(None)``."""
    return jobs_document(job_rows(reply, include_finished))


def cluster_reply_document(reply: p.ClusterReply) -> dict:
    """What `jet cluster --json` prints, from the reply to ``ClusterRequest``."""
    return cluster_document(reply.state, reply.version, reply.cluster_name, member_rows(reply), reply.notes)


def member_rows(reply: p.ClusterReply) -> list[MemberRow]:
    """The members of a ClusterReply as `jet cluster` shows them."""
    return [MemberRow(m.address, m.uuid, m.pid, restarts, m.host, m.forked)
            for m, restarts in zip(reply.members, reply.restarts)]


def resolve_job_id(requester, name_or_id: str) -> int:
    """The id of the job ``name_or_id`` names: a name wins (the active job of that name, else
    the newest), else an id (docs/jet-compatibility.md §1); NoSuchJob if neither."""
    named = requester.request(p.GetJobs(name_or_id)).jobs
    if named:
        return min(named, key=lambda s: (JobStatus[s.status].is_terminal, -s.submission_time)).job_id
    job_id = id_from_string(name_or_id)
    if job_id is None:
        raise NoSuchJob(f"No job with name or id '{name_or_id}' was found")
    return job_id  # whether there is such a job, DescribeJob tells


def measurements_of(reports_blob: bytes) -> list[tuple[dict, int, int]]:
    """(tags, value, timestamp) of every measurement in the reports of a JobDescription."""
    reports = p.unpack_serialized(reports_blob)
    if not reports:
        return []
    from jetmq.core.metrics_context import decode_report

    return [m for report in reports for m in decode_report(report)]


def description_document(reply: p.JobDescription, measurements: list) -> dict:
    """The document `jet describe --json` prints (and the text form shows): see docs/operations.md."""
    job, config = reply.job, reply.config
    status = JobStatus[job.status]
    failure = None
    if job.failure_text is not None:
        failure = {"text": job.failure_text, "exception": reply.failure_exception,
                   "message": reply.failure_message, "where": reply.failure_where}
    executions = [{"number": e.number, "id": id_to_string(e.execution_id), "start_time": e.start_time,
                   "end_time": e.end_time, "members": list(e.members), "ended": e.ended, "reason": e.reason}
                  for e in reply.executions]
    rows, reported_at = vertex_rows(measurements)
    return {
        "id": id_to_string(job.job_id),
        "name": job.name,
        "status": job.status,
        "submission_time": job.submission_time,
        "completion_time": job.completion_time,
        "processing_guarantee": config.get("processing_guarantee", "NONE"),
        "config": config,
        "failure": failure,
        "failures": [{"time": f.time, "cause": f.cause, "then": f.then} for f in job.failures],
        "executions_started": job.executions_started,
        "restarts": sum(1 for e in executions if e["ended"] == "RESTARTED"),
        "executions": executions,
        "last_snapshot_id": job.last_snapshot_id,
        "snapshot_in_progress": job.snapshot_in_progress,
        "members": [{"uuid": m.uuid, "address": m.address, "pid": m.pid} for m in reply.members],
        "dag": reply.dag,
        "metrics": {
            "state": "reported" if rows else _metrics_state(status, config),
            "note": None if rows else _metrics_note(status, config, reply.metrics_interval_ms),
            "interval_ms": reply.metrics_interval_ms,
            "timestamp": reported_at if rows else None,
            "vertices": [{"name": r.vertex, "items_in": r.items_in, "items_out": r.items_out,
                          "rate": None if r.rate is None else round(r.rate, 3),
                          "queue_size": r.queue_size, "queue_capacity": r.queue_capacity} for r in rows],
        },
    }


def _metrics_state(status: JobStatus, config: dict) -> str:
    if not config.get("metrics_enabled", True):
        return "disabled"
    if status.is_terminal and not config.get("store_metrics_after_job_completion", False):
        return "not_kept"
    return "none"


def _metrics_note(status: JobStatus, config: dict, interval_ms: int) -> str:
    state = _metrics_state(status, config)
    if state == "disabled":
        return "no metrics: they are disabled for this job (metrics_enabled=False)"
    if state == "not_kept":
        return "no metrics: the job has finished and did not keep them (store_metrics_after_job_completion=False)"
    if status.is_terminal:
        return "no metrics: none were kept (a master keeps them in memory only)"
    if status in (JobStatus.STARTING, JobStatus.RUNNING, JobStatus.COMPLETING):
        return f"no metrics reported yet (the members report every {interval_ms / 1000:g} s)"
    return f"no metrics: no execution of the job runs ({status.name})"
