"""Keys of processor state in snapshots.

A processor saves its state with ``outbox.offer_to_snapshot(key, value)``. On restore,
an entry goes to the processor that owns the key's partition, so keyed state follows
its keys when a job restarts on a different number of members. State that is not
keyed (a source's offset, a non-keyed accumulator) uses a BroadcastKey: its entries go
to every processor of the vertex, and each takes what is its own (for example the
entry whose BroadcastKey names its global index).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable


@dataclass(frozen=True, slots=True)
class BroadcastKey:
    """A snapshot key whose entry every processor of the vertex receives on restore."""

    key: Hashable


def broadcast_key(key: Hashable) -> BroadcastKey:
    return BroadcastKey(key)


@dataclass
class SnapshotContext:
    """A processor's view of snapshots, kept current by the engine.

    ``current_snapshot_id`` is the snapshot being saved during save_to_snapshot() and
    snapshot_commit_prepare(), and the last one saved afterwards (-1 before the first);
    ``restored_snapshot_id`` the snapshot this execution's state came from (-1: none).
    Transactional sinks tag their output with it (see Sinks in exactly-once mode).
    """

    processing_guarantee: str = "NONE"
    current_snapshot_id: int = -1
    restored_snapshot_id: int = -1

    @property
    def exactly_once(self) -> bool:
        return self.processing_guarantee == "EXACTLY_ONCE"
