"""Messages of executions between the master and its members: an execution's plan, start and
end, its snapshots, and the store service of members that do not mount the snapshot store."""
from __future__ import annotations

import typing

from jetmq.protocol.codec import message, nested

from jetmq.protocol.cluster import MemberInfo


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


# ---------------------------------------------------------------------------------
# The store service: member <-> master


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


__all__ = [name for name, value in list(globals().items()) if isinstance(value, type) and value.__module__ == __name__]
