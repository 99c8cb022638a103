"""Bounded queues of batches between tasklets, and the merged input of several queues.

Every tasklet of a member runs on the member's one loop thread, so these queues need
no locks. A queue carries batches (lists) from exactly one producer to one consumer;
a batch holds at most one marker (Watermark, SnapshotBarrier, DONE_ITEM), as its
last element (the Outbox's rule), so markers keep their place among the items.
"""
from __future__ import annotations

import enum
from collections import deque

from jetmq.core.markers import DONE_ITEM, MARKER_TYPES, SnapshotBarrier, Watermark

#: Items a queue holds before its producer must wait (Jet's default queue size).
DEFAULT_QUEUE_CAPACITY = 1024


class BatchQueue:
    """A single-producer, single-consumer queue of batches, bounded by item count.

    ``has_room`` is checked before ``put``; a put batch is taken whole, so a queue may
    exceed its capacity by at most one batch.
    """

    __slots__ = ("_batches", "size", "capacity", "name")

    def __init__(self, capacity: int = DEFAULT_QUEUE_CAPACITY, name: str = ""):
        self._batches: deque[list] = deque()
        self.size = 0
        self.capacity = capacity
        self.name = name

    def has_room(self) -> bool:
        return self.size < self.capacity

    def put(self, batch: list) -> None:
        self._batches.append(batch)
        self.size += len(batch)

    def take(self) -> list | None:
        if not self._batches:
            return None
        batch = self._batches.popleft()
        self.size -= len(batch)
        return batch

    def __bool__(self) -> bool:
        return bool(self._batches)

    def __repr__(self) -> str:
        return f"BatchQueue({self.name}, {self.size}/{self.capacity})"


class Event(enum.Enum):
    """What one step of an InputStream took; items it appended come before the event."""

    NOTHING = 0  # no queue had a batch
    ITEMS = 1  # a batch was taken (its items, possibly none, were appended)
    WATERMARK = 2  # ... and the coalesced watermark advanced (see InputStream.watermark)
    DONE = 3  # ... and every queue has now delivered DONE_ITEM: the stream is over


#: A queue that has ended holds the top watermark, so it never holds the minimum back.
_ENDED = 1 << 62


class InputStream:
    """The merged input of one inbound edge (ordinal): several producer queues.

    Takes batches round-robin from the queues. DONE_ITEM from every queue ends the
    stream. Watermarks are coalesced as Jet does: the stream's watermark is the
    minimum over its queues of the last watermark each delivered, and an event is
    reported only when that minimum advances.
    """

    def __init__(self, ordinal: int, priority: int, queues: list[BatchQueue]):
        self.ordinal = ordinal
        self.priority = priority
        self.queues = queues
        self._live = list(range(len(queues)))  # indexes of queues not yet done
        self._queue_watermarks = [-(1 << 62)] * len(queues)
        self.watermark = -(1 << 62)
        self._next = 0

    @property
    def is_done(self) -> bool:
        return not self._live

    def drain_to(self, items: list) -> Event:
        """Move one batch's items to ``items``; the caller handles them before the event."""
        live = self._live
        for _ in range(len(live)):
            position = self._next % len(live)
            index = live[position]
            batch = self.queues[index].take()
            if batch is None:
                self._next = position + 1
                continue
            last = batch[-1] if batch else None
            if type(last) not in MARKER_TYPES:
                items.extend(batch)
                self._next = position + 1
                return Event.ITEMS
            if len(batch) > 1:
                items.extend(batch[:-1])
            self._next = position + 1
            return self._on_marker(index, position, last)
        return Event.NOTHING

    def _on_marker(self, index: int, position: int, marker) -> Event:
        if marker is DONE_ITEM:
            del self._live[position]
            self._queue_watermarks[index] = _ENDED
            return Event.DONE if not self._live else self._coalesce()
        if type(marker) is Watermark:
            self._queue_watermarks[index] = marker.timestamp
            return self._coalesce()
        if type(marker) is SnapshotBarrier:
            raise NotImplementedError("snapshot barriers arrive with the snapshot layer")
        raise TypeError(f"unexpected marker {marker!r}")

    def _coalesce(self) -> Event:
        low = min(self._queue_watermarks)
        if self.watermark < low < _ENDED:
            self.watermark = low
            return Event.WATERMARK
        return Event.ITEMS
