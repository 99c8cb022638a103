"""Control markers that travel in order with data items on every queue.

A marker is an object of one of three types: `Watermark`, `SnapshotBarrier` or the
end-of-stream singleton `DONE_ITEM`. Markers ride in the same batches (lists) as data
items, so that items, watermarks, barriers and the end of the stream keep their order
on each queue and each connection (docs/jet-compatibility.md §7). Recognising one costs a
single set look-up: `is_marker(x)` is `type(x) in MARKER_TYPES`; subclasses are not
markers.

Where a marker may sit inside a batch is a rule of the queues, documented on
`jetmq.core.inbox_outbox.Outbox`: a batch drained from an outbox bucket holds at most
one marker, and only as its last element.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DONE_ITEM", "MARKER_TYPES", "SnapshotBarrier", "Watermark", "is_marker"]


@dataclass(frozen=True, slots=True)
class Watermark:
    """Event time has advanced to `timestamp` (ms): no item older than it will follow."""

    timestamp: int


@dataclass(frozen=True, slots=True)
class SnapshotBarrier:
    """Chandy-Lamport barrier of snapshot `snapshot_id` (ids count from 0 per job).

    `is_terminal` marks the snapshot taken on suspend, graceful restart or
    `cancel_and_export_snapshot`, after which the job stops.
    """

    snapshot_id: int
    is_terminal: bool = False


class _DoneItem:
    """Type of `DONE_ITEM`; there is exactly one instance per process."""

    __slots__ = ()

    def __reduce__(self) -> str:
        # A string tells pickle "the module-level global of this name", so
        # unpickling yields the existing singleton and `is` comparisons keep working.
        return "DONE_ITEM"

    def __repr__(self) -> str:
        return "DONE_ITEM"


DONE_ITEM = _DoneItem()
"""End of stream: the producer of a queue emits no more items after it."""

MARKER_TYPES: frozenset[type] = frozenset({Watermark, SnapshotBarrier, _DoneItem})


def is_marker(obj: object) -> bool:
    """True if `obj` is a Watermark, a SnapshotBarrier or DONE_ITEM."""
    return type(obj) in MARKER_TYPES
