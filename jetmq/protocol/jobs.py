"""Messages of jobs: submission, executions, snapshots, named structures."""
from __future__ import annotations

import typing

from jetmq.protocol.codec import message, nested

from jetmq.protocol.cluster import MemberInfo


# ---------------------------------------------------------------------------------
# Jobs: client <-> master


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


@message
class SubmitJob:
    """Submit a job: its JobConfig as a dict, and its DAG pickled by cloudpickle (opaque here)."""

    config: dict[str, typing.Any]
    dag: bytes
    if_absent: bool


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


@message
class ExportSnapshot:
    """Export a job's state as the named snapshot (and cancel it); answered when done."""

    job_id: int
    name: str
    cancel: bool


@nested
class SnapshotSummary:
    name: str
    creation_time: int
    size_bytes: int
    job_id: int
    job_name: str | None


@message
class GetSnapshots:
    """List the named (exported) snapshots."""


@message
class SnapshotsReply:
    snapshots: tuple[SnapshotSummary, ...]


@message
class DeleteSnapshot:
    name: str


@message
class Ack:
    """A request that returns nothing succeeded."""


@message
class GetMap:
    name: str


@message
class GetList:
    name: str


@message
class GetObservable:
    """Read an observable's items from sequence ``from_seq`` on (at most ``max_items``)."""

    name: str
    from_seq: int
    max_items: int


@message
class ObservableItems:
    """Items ``first_seq`` .. ``first_seq + len - 1`` (a pickled list of pickled items);
    ``done`` once the job writing it ended and every item was read; ``error`` if it failed."""

    first_seq: int
    items: bytes
    done: bool
    error: str | None


@message
class SerializedReply:
    """A named map's entries or a list's items: a pickled list of pickled keys/values/items."""

    data: bytes


# ---------------------------------------------------------------------------------
# Executions: master <-> member


@message
class InitExecution:
    """Prepare an execution: the DAG (opaque to the master) and the plan for this member."""

    job_id: int
    execution_id: int
    member_index: int  # this member's index in ``members``
    members: tuple[MemberInfo, ...]
    partition_owners: tuple[int, ...]  # member index owning each partition
    config: dict[str, typing.Any]
    dag: bytes
    restored_snapshot_id: int  # -1: the job starts with empty state
    restore: bytes | None  # this member's state: packed [(vertex, [(partition, pickled entries, count)])]


@message
class ExecutionInitialized:
    execution_id: int
    failure: str | None


@message
class StartExecution:
    execution_id: int


@message
class TerminateExecution:
    execution_id: int
    reason: str


@message
class ExecutionFinished:
    """A member's part of an execution ended: completed (no failure), failed, or
    stopped because the master told it to terminate (``terminated``)."""

    execution_id: int
    failure: str | None
    terminated: bool


@message
class StartSnapshot:
    """Phase 1 of a snapshot: sources save their state and emit the barrier."""

    execution_id: int
    snapshot_id: int
    terminal: bool


@message
class SnapshotChunk:
    """Some of a vertex's state on one member: a packed list of (partition, pickled list of
    (key, value), entry count); partition -1 holds broadcast entries."""

    execution_id: int
    snapshot_id: int
    vertex: str
    entry_count: int
    entries: bytes


@message
class SnapshotPhase1Done:
    """Every processor of this member saved its state (after the chunks, on the same link)."""

    execution_id: int
    snapshot_id: int
    failure: str | None


@message
class SnapshotPhase2:
    """The snapshot was committed (success) or abandoned: transactional sinks act on it."""

    execution_id: int
    snapshot_id: int
    success: bool


@message
class StagedWrite:
    """Exactly-once sink output of one epoch (the items before barrier ``epoch``; -1 for
    those after the last barrier), applied when snapshot ``epoch`` commits (or when the
    job completes), dropped if the execution ends otherwise. ``kind`` is "map" or "list";
    ``data`` is as in MapPutAll / ListAddAll."""

    execution_id: int
    epoch: int
    kind: str
    name: str
    data: bytes


@message
class MapPutAll:
    """A sink's batch for a named map: a pickled list of (pickled key, pickled value)."""

    name: str
    entries: bytes


@message
class ObservableAttach:
    """A job's observable sink started: the observable ends when that job ends."""

    name: str
    job_id: int


@message
class ObservablePublish:
    """A sink's batch for an observable: a pickled list of pickled items."""

    name: str
    items: bytes


@message
class ListAddAll:
    """A sink's batch for a named list: a pickled list of pickled items."""

    name: str
    items: bytes



__all__ = [name for name, value in list(globals().items()) if isinstance(value, type) and value.__module__ == __name__]
