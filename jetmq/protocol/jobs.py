"""Messages of jobs between clients and the master: submitting jobs, finding and listing
them, and acting on them."""
from __future__ import annotations

import typing

from jetmq.protocol.codec import message, nested


@nested
class FailureInfo:
    """A failure of a job's own code: when (epoch ms), why, and what followed."""

    time: int
    cause: str
    then: str  # "restarted after ... ms (...)", "suspended" or "failed"


@nested
class JobSummary:
    """A job as clients see it; times are epoch milliseconds."""

    job_id: int
    name: str | None
    status: str  # a JobStatus name
    submission_time: int
    completion_time: int | None
    failure_text: str | None
    executions_started: int  # by this master (a restart starts one more)
    execution_members: tuple[str, ...]  # uuids of the members of the current execution
    last_snapshot_id: int
    snapshot_in_progress: int  # the id of the snapshot being taken, -1 for none
    failures: tuple[FailureInfo, ...]  # its own code's failures, the newest last


@message
class SubmitJob:
    """Submit a job: its JobConfig as a dict, and its DAG pickled by cloudpickle (opaque here)."""

    config: dict[str, typing.Any]
    dag: bytes
    if_absent: bool
    outline: dict[str, typing.Any] | None = None  # the DAG's shape (DAG.outline()), kept for `jet describe`


@message
class GetJob:
    job_id: int


@message
class GetJobs:
    name: str | None


@message
class JobReply:
    job: JobSummary


@message
class JobsReply:
    jobs: tuple[JobSummary, ...]


@message
class JobAction:
    """cancel, suspend, resume or restart a job (JobAction.ACTIONS)."""

    ACTIONS = ("cancel", "suspend", "resume", "restart")
    job_id: int
    action: str


__all__ = [name for name, value in list(globals().items()) if isinstance(value, type) and value.__module__ == __name__]
