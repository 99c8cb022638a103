"""Messages of named (exported) snapshots between clients and the master."""
from __future__ import annotations

from jetmq.protocol.codec import message, nested


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


__all__ = [name for name, value in list(globals().items()) if isinstance(value, type) and value.__module__ == __name__]
