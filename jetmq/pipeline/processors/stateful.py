"""Sort: a processor that keeps every item until its input ends."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from jetmq.core.inbox_outbox import Inbox
from jetmq.pipeline.processors.aggregation import SavesEntries, _remaining

SORT_SNAPSHOT_CHUNK = 10_000
"""Items per snapshot entry of the sort processor."""

__all__ = ["SortProcessor"]


class SortProcessor(SavesEntries):
    """Collects every item it receives, then emits them sorted in complete().

    It sits behind a distributed all-to-one edge, so one processor in the cluster
    gets every item; the others receive and emit nothing. Snapshots: the items (those
    not emitted yet, once complete() has begun) in chunks keyed by the vertex's name,
    so they are restored to the processor the all-to-one edge feeds.
    """

    def __init__(self, key: Callable[[Any], Any] | None, reverse: bool) -> None:
        self._key = key
        self._reverse = reverse
        self._items: list[Any] = []
        self._sorted: Iterator[Any] | None = None

    def process(self, ordinal: int, inbox: Inbox) -> None:
        inbox.drain_to(self._items)

    def complete(self) -> bool:
        if self._sorted is None:
            self._items.sort(key=self._key, reverse=self._reverse)
            self._sorted = iter(self._items)
        room = self.outbox.room()
        return self.outbox.offer_many(self._sorted) < room

    def _entries(self) -> list[tuple[Any, Any]]:
        items = _remaining(self, "_sorted") if self._sorted is not None else self._items
        name = self.context.vertex_name
        return [(name, ("sorted" if self._sorted is not None else "items", items[i:i + SORT_SNAPSHOT_CHUNK]))
                for i in range(0, len(items), SORT_SNAPSHOT_CHUNK)]

    def restore_from_snapshot(self, inbox: Inbox) -> None:
        for _key, (kind, chunk) in inbox.take():
            self._items.extend(chunk)  # sorted again in complete(): the same order
            if kind == "sorted":
                self._sorted = None
