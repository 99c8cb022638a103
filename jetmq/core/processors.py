"""Small built-in processors: a no-op sink, a list source and sink, map, filter, flat_map.

Each honours backpressure exactly: nothing is lost or emitted twice however often the
outbox refuses. The transforms emit every result to all output ordinals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

from jetmq.core.inbox_outbox import Inbox
from jetmq.core.markers import Watermark
from jetmq.core.processor import Processor
from jetmq.core.snapshot import BroadcastKey

__all__ = [
    "CollectSinkProcessor",
    "FilterProcessor",
    "FlatMapProcessor",
    "ItemsSourceProcessor",
    "MapProcessor",
    "NoopProcessor",
]


class NoopProcessor(Processor):
    """Discards every item it receives."""

    def process(self, ordinal: int, inbox: Inbox) -> None:
        inbox.clear()


class ItemsSourceProcessor(Processor):
    """Emits the items of a sequence, in order, from the processor of global index 0
    (the others emit nothing), as Jet's TestSources.items.

    Emits in `complete()`, as much as the outbox takes per call. Its position is its
    snapshot state, under a BroadcastKey so that the processor of global index 0 gets
    it back on any number of members, and kept after it completes: a job restored from
    a snapshot goes on after the last item emitted before that snapshot.
    """

    POSITION = BroadcastKey("items-source-position")

    def __init__(self, items: Sequence[Any]) -> None:
        self._items = items
        self._position = 0

    def _reads(self) -> bool:
        return self.context.global_index == 0

    def complete(self) -> bool:
        if not self._reads():
            return True
        items = self._items
        end = min(len(items), self._position + self.outbox.room())
        self._position += self.outbox.offer_many(items[self._position:end])
        return self._position >= len(items)

    def save_to_snapshot(self) -> bool:
        return not self._reads() or self.outbox.offer_to_snapshot(self.POSITION, self._position)

    def state_after_complete(self) -> list[tuple[Any, Any]]:
        return [(self.POSITION, self._position)] if self._reads() else []

    def restore_from_snapshot(self, inbox: Inbox) -> None:
        for key, position in inbox.take():
            if key == self.POSITION:
                self._position = position


class CollectSinkProcessor(Processor):
    """Appends every item to `items` and every watermark to `watermarks` (for tests).

    Pass your own list as `items` to read the results from outside the processor.
    """

    def __init__(self, items: list[Any] | None = None) -> None:
        self.items: list[Any] = [] if items is None else items
        self.watermarks: list[Watermark] = []

    def process(self, ordinal: int, inbox: Inbox) -> None:
        inbox.drain_to(self.items)

    def try_process_watermark(self, watermark: Watermark) -> bool:
        self.watermarks.append(watermark)
        return True


class MapProcessor(Processor):
    """Emits `fn(item)` for every item; a None result emits nothing (as Jet's mapP)."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self._fn = fn

    def process(self, ordinal: int, inbox: Inbox) -> None:
        # Take only as many items as the outbox has room for: each gives <= 1 result,
        # so every result fits and no item is ever half done.
        room = self.outbox.room()
        if room:
            results = map(self._fn, inbox.take(room))
            self.outbox.offer_many([r for r in results if r is not None])


class FilterProcessor(Processor):
    """Emits the items for which `fn(item)` is true."""

    def __init__(self, fn: Callable[[Any], object]) -> None:
        self._fn = fn

    def process(self, ordinal: int, inbox: Inbox) -> None:
        room = self.outbox.room()
        if room:
            self.outbox.offer_many(list(filter(self._fn, inbox.take(room))))


class FlatMapProcessor(Processor):
    """Emits every element of the iterable `fn(item)` (None counts as empty).

    An item stays at the head of the inbox until all its results are emitted; the
    results not yet emitted wait in a pending iterator between calls.
    """

    def __init__(self, fn: Callable[[Any], Iterable[Any] | None]) -> None:
        self._fn = fn
        self._pending: Iterator[Any] | None = None

    def process(self, ordinal: int, inbox: Inbox) -> None:
        # Gather at most `room` results locally, then hand them over in one offer_many.
        room = self.outbox.room()
        out: list[Any] = []
        pending = self._pending
        while len(out) < room:
            if pending is None:
                if not inbox:
                    break
                results = self._fn(inbox.peek())
                pending = iter(()) if results is None else iter(results)
            out.extend(islice(pending, room - len(out)))
            if len(out) < room:  # fewer than asked for: the item's results are all out
                pending = None
                inbox.remove()
        # A full `out` may have exhausted `pending` exactly; the next call finds that out.
        self._pending = pending
        self.outbox.offer_many(out)
