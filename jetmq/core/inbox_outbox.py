"""Inbox and Outbox: the batch-oriented item buffers between a processor and the engine.

Items move between tasklets as batches (plain Python lists) so that per-item costs stay
in C loops (list.extend, slicing, map) wherever possible. The engine fills a
processor's `Inbox` with batches from its input queues and empties the processor's
`Outbox` buckets, one list per output ordinal, into its output queues.

Markers (`jetmq.core.markers`) ride in the same lists as items. The one rule the
engine can rely on: **a list returned by `Outbox.drain_bucket()` holds at most one
marker, and only as its last element**. Offering a marker seals the buckets it goes
to; a sealed bucket refuses every further offer until the engine drains it. So the
engine recognises a marker with one check per batch, `is_marker(batch[-1])`, and
never scans a batch. Markers reach an `Inbox` never: the engine hands them to the
processor through `try_process_watermark` and its own barrier/DONE handling.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

from jetmq.core.markers import MARKER_TYPES

__all__ = ["DEFAULT_OUTBOX_CAPACITY", "Inbox", "Outbox"]

DEFAULT_OUTBOX_CAPACITY = 1024
"""Items per outbox bucket: one batch, large enough to spread the per-batch costs (a
queue put, a tasklet turn) over many items, small enough to keep one turn short."""


class Inbox:
    """The items waiting for a processor on one input ordinal, in arrival order.

    Items may be any object, None included: `peek()` and `poll()` return their
    `default` (None unless given) when the inbox is empty, so a processor that may see
    None items tests the inbox first (`while inbox: item = inbox.poll()`) or passes its
    own sentinel; `remove()` raises IndexError when empty.

    Jet semantics: iterating does not remove items; `poll`, `remove`, `take`, `drain`,
    `drain_to` and `clear` do. Items a processor leaves in the inbox (because its outbox
    is full) are offered to it again in the next `process` call.

    The inbox never mutates a list handed to `add_batch` and never hands out its own
    list, so the engine may give one batch to several inboxes (broadcast).
    """

    __slots__ = ("_items", "_pos")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._pos = 0  # index of the head item in _items

    def add_batch(self, items: list[Any]) -> None:
        """Append a batch (engine side). O(1) when the inbox is empty, as it normally is."""
        if self._pos >= len(self._items):
            self._items = items
        else:
            self._items = self._items[self._pos :] + items
        self._pos = 0

    def __len__(self) -> int:
        return len(self._items) - self._pos

    def __bool__(self) -> bool:
        return self._pos < len(self._items)

    def is_empty(self) -> bool:
        return self._pos >= len(self._items)

    def __iter__(self) -> Iterator[Any]:
        """The items in order, without removing them."""
        return islice(self._items, self._pos, None)

    def peek(self, default: Any = None) -> Any:
        """The head item without removing it, or `default` if the inbox is empty."""
        if self._pos < len(self._items):
            return self._items[self._pos]
        return default

    def poll(self, default: Any = None) -> Any:
        """Remove and return the head item, or return `default` if the inbox is empty."""
        pos = self._pos
        if pos < len(self._items):
            self._pos = pos + 1
            return self._items[pos]
        return default

    def remove(self) -> Any:
        """Remove and return the head item; IndexError if the inbox is empty."""
        pos = self._pos
        if pos >= len(self._items):
            raise IndexError("remove() from an empty Inbox")
        self._pos = pos + 1
        return self._items[pos]

    def take(self, n: int | None = None) -> list[Any]:
        """Remove and return (a new list of) the first `n` items, or all when None."""
        pos = self._pos
        end = len(self._items) if n is None else min(pos + n, len(self._items))
        batch = self._items[pos:end]
        self._pos = end
        return batch

    def drain(self, fn: Callable[[Any], object]) -> int:
        """Remove every item and call `fn` on each in order; return how many."""
        batch = self.take()
        deque(map(fn, batch), maxlen=0)  # runs the loop in C
        return len(batch)

    def drain_to(self, target: list[Any]) -> int:
        """Remove every item, appending them to `target`; return how many."""
        count = len(self._items) - self._pos
        target.extend(islice(self._items, self._pos, None) if self._pos else self._items)
        self.clear()
        return count

    def clear(self) -> None:
        """Remove every item."""
        self._items = []
        self._pos = 0

    def __repr__(self) -> str:
        return f"Inbox({len(self)} items)"


class Outbox:
    """A processor's output: one bucket (list) per output ordinal, plus a snapshot bucket.

    Ordinal arguments: an output ordinal `0 <= o < bucket_count`; -1 for every
    ordinal (the same item to each output); or a sequence of ordinals. An outbox with
    no buckets (a sink's) accepts every offer to -1 and drops it.

    Backpressure is all-or-nothing, as in Jet: `offer` returns False and adds nothing
    when any target bucket is full; the processor must then stop, return, and offer
    the same item again on its next call. The engine empties the buckets with
    `drain_bucket` between calls when downstream queues have room.

    Offering a marker (Watermark, SnapshotBarrier, DONE_ITEM) seals each target
    bucket: it refuses every offer until drained, so a drained bucket ends with its only
    marker. `offer_many` is for data items only and does not look for markers.
    """

    __slots__ = (
        "bucket_count",
        "capacity",
        "snapshot_capacity",
        "_buckets",
        "_limits",
        "_all",
        "_snapshot",
        "_serialize",
    )

    def __init__(
        self,
        bucket_count: int,
        capacity: int = DEFAULT_OUTBOX_CAPACITY,
        snapshot_capacity: int = DEFAULT_OUTBOX_CAPACITY,
        snapshot_serializer: Callable[[Any], Any] | None = None,
    ) -> None:
        """`snapshot_serializer`, if given, is applied to each value offered to the
        snapshot at once (as Jet serializes on offer), so the processor may keep
        mutating its state afterwards; the engine passes e.g. `cloudpickle.dumps`.
        Without it the engine must serialize drained entries before the processor
        runs again.
        """
        if bucket_count < 0:
            raise ValueError(f"bucket_count must be >= 0, got {bucket_count}")
        if capacity < 1 or snapshot_capacity < 1:
            raise ValueError(f"capacities must be >= 1, got {capacity} and {snapshot_capacity}")
        self.bucket_count = bucket_count
        self.capacity = capacity
        self.snapshot_capacity = snapshot_capacity
        self._buckets: list[list[Any]] = [[] for _ in range(bucket_count)]
        # Per bucket: the size at which it refuses offers; 0 once sealed by a marker.
        self._limits = [capacity] * bucket_count
        self._all = tuple(range(bucket_count))
        self._snapshot: list[tuple[Any, Any]] = []
        self._serialize = snapshot_serializer

    def offer(self, item: Any, ordinal: int | Sequence[int] = -1) -> bool:
        """Add `item` to the target bucket(s); False, adding nothing, if any is full."""
        if ordinal == -1 and self.bucket_count == 1:
            ordinal = 0  # the common case, twice as fast on the single-bucket path
        if type(ordinal) is int and ordinal >= 0:
            try:
                bucket = self._buckets[ordinal]
            except IndexError:
                raise self._bad_ordinal(ordinal) from None
            if len(bucket) >= self._limits[ordinal]:
                return False
            bucket.append(item)
            if type(item) in MARKER_TYPES:
                self._limits[ordinal] = 0
            return True
        ordinals = self._targets(ordinal)
        buckets, limits = self._buckets, self._limits
        for o in ordinals:
            if len(buckets[o]) >= limits[o]:
                return False
        seal = type(item) in MARKER_TYPES
        for o in ordinals:
            buckets[o].append(item)
            if seal:
                limits[o] = 0
        return True

    def offer_many(self, items: Iterable[Any], ordinal: int | Sequence[int] = -1) -> int:
        """Add as many of `items` as fit in every target bucket; return how many.

        Consumes exactly that many elements of the iterable (and none when the outbox
        is full), so a processor can resume a lazy iterator where it stopped: when the
        return value is below `room(ordinal)` measured just before, the iterable is
        exhausted. Data items only: markers must go through `offer`.
        """
        if ordinal == -1 and self.bucket_count == 1:
            ordinal = 0
        room = self.room(ordinal)
        if room == 0:
            return 0
        if type(items) is list:  # no iterator to consume: a slice copies in C, no islice step per item
            batch = items if len(items) <= room else items[:room]
        else:
            batch = list(islice(items, room))
        for o in (ordinal,) if type(ordinal) is int and ordinal >= 0 else self._targets(ordinal):
            self._buckets[o].extend(batch)
        return len(batch)

    def room(self, ordinal: int | Sequence[int] = -1) -> int:
        """How many data items every target bucket accepts now (0 if any is full or sealed).

        With no target buckets (a sink offering to -1) there is no limit: `capacity`.
        """
        if ordinal == -1 and self.bucket_count == 1:
            ordinal = 0
        if type(ordinal) is int and ordinal >= 0:
            if ordinal >= self.bucket_count:
                raise self._bad_ordinal(ordinal)
            return max(0, self._limits[ordinal] - len(self._buckets[ordinal]))
        free = [self._limits[o] - len(self._buckets[o]) for o in self._targets(ordinal)]
        return max(0, min(free, default=self.capacity))

    def offer_to_snapshot(self, key: Any, value: Any) -> bool:
        """Add the state entry (key, value) to the snapshot bucket; False if it is full."""
        if len(self._snapshot) >= self.snapshot_capacity:
            return False
        self._snapshot.append((key, value if self._serialize is None else self._serialize(value)))
        return True

    def offer_to_snapshot_many(self, entries: list[tuple[Any, Any]], start: int = 0) -> int:
        """Add state entries ``entries[start:]`` (a list of (key, value) pairs) until the
        snapshot bucket is full; how many were taken. The bulk form of offer_to_snapshot,
        for a processor whose state is a dict: offer ``list(state.items())`` from where
        the last call stopped, until the count taken reaches its end."""
        room = self.snapshot_capacity - len(self._snapshot)
        if room <= 0:
            return 0
        taken = entries[start:start + room]
        if self._serialize is not None:
            serialize = self._serialize
            taken = [(key, serialize(value)) for key, value in taken]
        self._snapshot.extend(taken)
        return len(taken)

    # ---- engine side ----

    def drain_bucket(self, ordinal: int) -> list[Any]:
        """Take the list of bucket `ordinal` (replaced by a new empty one, O(1)) and
        unseal it. The list holds at most one marker, as its last element.
        """
        batch = self._buckets[ordinal]
        self._buckets[ordinal] = []
        self._limits[ordinal] = self.capacity
        return batch

    def drain_snapshot_bucket(self) -> list[tuple[Any, Any]]:
        """Take the list of (key, value) state entries offered so far."""
        entries = self._snapshot
        self._snapshot = []
        return entries

    def bucket_size(self, ordinal: int) -> int:
        """Number of items (markers included) in bucket `ordinal`."""
        return len(self._buckets[ordinal])

    def total_size(self) -> int:
        """Number of items (markers included) in all buckets, snapshot bucket excluded."""
        return sum(map(len, self._buckets))

    def _targets(self, ordinal: int | Sequence[int]) -> Sequence[int]:
        if type(ordinal) is int:
            if ordinal == -1:
                return self._all
            raise self._bad_ordinal(ordinal)
        for o in ordinal:
            if not (type(o) is int and 0 <= o < self.bucket_count):
                raise self._bad_ordinal(o)
        return ordinal

    def _bad_ordinal(self, ordinal: object) -> ValueError:
        return ValueError(
            f"invalid outbox ordinal {ordinal!r}: this outbox has {self.bucket_count} "
            f"bucket(s), so use 0..{self.bucket_count - 1}, -1 for all, or a sequence of them"
        )

    def __repr__(self) -> str:
        sizes = [len(b) for b in self._buckets]
        return f"Outbox(buckets={sizes}, capacity={self.capacity}, snapshot={len(self._snapshot)})"
