"""Messages of jobs: submission, executions, snapshots, named structures."""
from __future__ import annotations

import typing

from jetmq.protocol.codec import message, nested

from jetmq.protocol.cluster import MemberInfo


# ---------------------------------------------------------------------------------
# Jobs: client <-> master


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


@nested
class FileRef:
    """A file of the snapshot store, as a manifest names it: checked against size and CRC-32."""

    name: str  # relative to the directory it is in (a snapshot's, or the store's for final output)
    size: int
    crc32: int


@nested
class SnapshotFiles:
    """What one member wrote into a snapshot's directory (the master reads none of it)."""

    member_index: int
    state: FileRef  # segments of lz4-compressed state
    index: FileRef  # where each (vertex, partition) segment is in ``state``
    staged: FileRef | None  # exactly-once output the snapshot covers
    entries: int  # state entries in all


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
    restore_dir: str | None  # the snapshot to restore, relative to the snapshot store; members read it
    metrics_interval_ms: int  # how often the members report the execution's metrics (0: never)


@message
class ExecutionInitialized:
    execution_id: int
    failure: str | None


@message
class PeerUnreachable:
    """A member of an execution cannot reach another's data socket (no answer to its ping
    within a few seconds at the start, or its connection stayed down): the execution
    cannot run; the master restarts, suspends or fails the job as for a lost member."""

    execution_id: int
    member_uuid: str  # the one that cannot be reached
    address: str
    reason: str


@message
class ExecutionMetrics:
    """A member's measurements of an execution (jetmq/core/metrics_context.py): sent every
    metrics interval, and once more when its part ends, before ExecutionFinished. The master
    keeps the latest of each member and never reads them."""

    execution_id: int
    data: bytes


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
    stopped because the master told it to terminate (``terminated``). A member whose
    part completed names the file of its exactly-once output not yet covered by a
    committed snapshot (relative to the snapshot store), if it has any."""

    execution_id: int
    failure: str | None
    terminated: bool
    final_output: FileRef | None


@message
class StartSnapshot:
    """Phase 1 of a snapshot: sources save their state and emit the barrier."""

    execution_id: int
    snapshot_id: int
    terminal: bool


@message
class SnapshotPhase1Done:
    """Every processor of this member saved its state, and the member wrote it (and the
    exactly-once output it covers) into the snapshot's directory: ``files``, or None
    when it has nothing to save (its part completed)."""

    execution_id: int
    snapshot_id: int
    failure: str | None
    files: SnapshotFiles | None


@message
class SnapshotPhase2:
    """The snapshot was committed (success) or abandoned: transactional sinks act on it."""

    execution_id: int
    snapshot_id: int
    success: bool


@message
class StoreWrite:
    """A member that does not mount the snapshot store writes a file through the master's
    store service: part ``data`` at ``offset``; ``last`` makes the file whole and durable."""

    path: str  # relative to the store's root
    offset: int
    data: bytes
    last: bool


@message
class StoreRead:
    """Read ``length`` bytes of a store file from ``offset`` (0: only its size; -1: the rest)."""

    path: str
    offset: int
    length: int


@message
class StoreReply:
    """The store service's answer: the bytes read, the file's size, or the error."""

    error: str | None
    data: bytes
    size: int


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
