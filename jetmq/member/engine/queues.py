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
    BARRIER = 4  # ... and every live queue has now delivered the current snapshot barrier


#: Below every watermark: an input that has delivered none yet.
NO_WATERMARK = -(1 << 62)
#: A queue that has ended holds the top watermark, so it never holds the minimum back.
ENDED = 1 << 62


class InputStream:
    """The merged input of one inbound edge (ordinal): several producer queues.

    Takes batches round-robin from the queues. DONE_ITEM from every queue ends the
    stream. Watermarks are coalesced as Jet does: the stream's watermark is the
    minimum over its queues of the last watermark each delivered, and an event is
    reported only when that minimum advances.

    Snapshot barriers (one snapshot at a time): once every live queue has delivered
    the current barrier, BARRIER is reported. With ``align`` (exactly-once), and for
    a terminal barrier always, a queue that delivered the barrier is not drained any
    more until ``release_barrier()``, so no item after the barrier is processed
    before the snapshot; without it (at-least-once) draining goes on.
    """

    def __init__(self, ordinal: int, priority: int, queues: list[BatchQueue], align: bool = True):
        self.ordinal = ordinal
        self.priority = priority
        self.queues = queues
        self.align = align
        self._live = list(range(len(queues)))  # indexes of queues not yet done
        self._queue_watermarks = [NO_WATERMARK] * len(queues)
        self.watermark = NO_WATERMARK
        self.top_watermark = NO_WATERMARK  # the highest any queue delivered (a metric)
        self._next = 0
        self.barrier: SnapshotBarrier | None = None  # the barrier being collected
        self._barrier_from: set[int] = set()  # queues that delivered it
        self._blocked: set[int] = set()  # queues held back until release_barrier()
        self._stash: dict[int, deque[list]] = {}  # batches taken early by hunt_barrier()

    @property
    def is_done(self) -> bool:
        return not self._live

    @property
    def barrier_complete(self) -> bool:
        """Every live queue delivered the current barrier (True for an ended stream)."""
        return self.barrier is not None and self._barrier_from.issuperset(self._live)

    @property
    def holding_back(self) -> bool:
        """The barrier is complete here and the queues wait for release_barrier()."""
        return bool(self._blocked) and self.barrier_complete

    def release_barrier(self) -> None:
        """The snapshot is taken: forget the barrier and drain every queue again
        (stashed batches first)."""
        self.barrier = None
        self._barrier_from.clear()
        self._blocked.clear()

    def drain_to(self, items: list) -> Event:
        """Move one batch's items to ``items``; the caller handles them before the event."""
        live = self._live
        for _ in range(len(live)):
            position = self._next % len(live)
            index = live[position]
            if index in self._blocked:
                self._next = position + 1
                continue
            stash = self._stash.get(index)
            batch = stash.popleft() if stash else self.queues[index].take()
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

    def hunt_barrier(self, barrier: SnapshotBarrier) -> bool:
        """Collect ``barrier`` from this stream without handing out any item.

        A stream of lower priority is not drained while one of higher priority is
        active, yet a snapshot needs its barrier. The batches before the barrier are
        kept, in order, and come out of drain_to() later; a queue whose next marker
        is DONE counts as having delivered the barrier. True if anything was taken.
        """
        if self.barrier is None:
            self.barrier = barrier
        taken = False
        for index in self._live:
            if index in self._barrier_from:
                continue
            while (batch := self.queues[index].take()) is not None:
                taken = True
                last = batch[-1] if batch else None
                if type(last) is SnapshotBarrier:
                    batch = batch[:-1]
                if batch:
                    self._stash.setdefault(index, deque()).append(batch)
                if type(last) is SnapshotBarrier or last is DONE_ITEM:
                    self._barrier_from.add(index)
                    self._blocked.add(index)
                    break
        return taken

    def _on_marker(self, index: int, position: int, marker) -> Event:
        if marker is DONE_ITEM:
            del self._live[position]
            self._queue_watermarks[index] = ENDED
            if not self._live:
                return Event.DONE
            return Event.BARRIER if self.barrier_complete else self._coalesce()
        if type(marker) is Watermark:
            self._queue_watermarks[index] = marker.timestamp
            if marker.timestamp > self.top_watermark:
                self.top_watermark = marker.timestamp
            return self._coalesce()
        if type(marker) is SnapshotBarrier:
            if self.barrier is None:
                self.barrier = marker
            elif marker.snapshot_id != self.barrier.snapshot_id:
                raise RuntimeError(f"barrier of snapshot {marker.snapshot_id} arrived while snapshot "
                                   f"{self.barrier.snapshot_id} was being collected")
            self._barrier_from.add(index)
            if self.align or marker.is_terminal:
                self._blocked.add(index)
            return Event.BARRIER if self.barrier_complete else Event.ITEMS
        raise TypeError(f"unexpected marker {marker!r}")

    def _coalesce(self) -> Event:
        low = min(self._queue_watermarks)
        if self.watermark < low < ENDED:
            self.watermark = low
            return Event.WATERMARK
        return Event.ITEMS
