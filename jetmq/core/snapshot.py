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
