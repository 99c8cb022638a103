"""Messages of what `jet describe` and the dashboard show of a job: its description in full,
and its metrics reports."""
from __future__ import annotations

import typing

from jetmq.protocol.codec import message, nested

from jetmq.protocol.jobs import JobSummary


@message
class GetJobMetrics:
    """The latest metrics reports of a job's members."""

    job_id: int


@message
class JobMetricsReply:
    """The reports (ExecutionMetrics.data) the master holds for the job, one per member, as a
    list of bytes packed with pack_serialized."""

    reports: bytes


@message
class DescribeJob:
    """Everything `jet describe` shows of a job (answered with JobDescription)."""

    job_id: int


@nested
class ExecutionInfo:
    """An execution in a job's history: when it started, on which members, how it ended and why."""

    number: int  # 1 for the job's first execution, counted over the job's life
    execution_id: int
    start_time: int
    end_time: int | None  # None while it runs, or when not known (the master stopped meanwhile)
    members: tuple[str, ...]  # member uuids
    ended: str | None  # COMPLETED, FAILED, CANCELLED, SUSPENDED, RESTARTED or INTERRUPTED; None: it runs
    reason: str | None


@nested
class DescribedMember:
    """A member of a job's execution; ``address`` and ``pid`` None: it is no longer a member."""

    uuid: str
    address: str | None
    pid: int | None


@message
class JobDescription:
    """A job in full: its summary, its config, its recent executions (oldest first, at most
    the 20 its record keeps), the members of its current (else last) execution, and its
    metrics reports as GetJobMetrics gives them (opaque to the master; the client decodes them)."""

    job: JobSummary
    config: dict[str, typing.Any]  # JobConfig.to_dict()
    failure_exception: str | None  # the failure text taken apart: the exception's type,
    failure_message: str | None  # its message (the whole text when it names no exception),
    failure_where: str | None  # and where it was raised (e.g. ProcessorTasklet{map})
    executions: tuple[ExecutionInfo, ...]
    members: tuple[DescribedMember, ...]
    metrics_interval_ms: int  # how often the members report metrics
    metrics: bytes  # as JobMetricsReply.reports
    dag: dict[str, typing.Any] | None = None  # the DAG's shape as submitted (DAG.outline()); None: not known


__all__ = [name for name, value in list(globals().items()) if isinstance(value, type) and value.__module__ == __name__]
