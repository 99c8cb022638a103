"""Sort and map_stateful: processors that keep items or state between calls."""
from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from typing import Any

from jetmq.core.inbox_outbox import Inbox
from jetmq.core.processor import Processor

__all__ = ["MapStatefulProcessor", "SortProcessor"]


class SortProcessor(Processor):
    """Collects every item it receives, then emits them sorted in complete().

    It sits behind a distributed all-to-one edge, so one processor in the cluster
    gets every item; the others receive and emit nothing.
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


_NO_KEY = object()


class MapStatefulProcessor(Processor):
    """Emits `fn(state, item)` (ungrouped: one state per processor) or
    `fn(state, key, item)` (grouped: one state per key, created on the key's first
    item) for each item; a None result emits nothing. `create_fn()` makes a state.

    The states are saved in snapshots as (key, state) entries (the key of the
    ungrouped state is a fixed marker name), and restored from them.
    """

    UNGROUPED_KEY = "__map_stateful_state__"

    def __init__(self, create_fn: Callable[[], Any], fn: Callable[..., Any],
                 key_fn: Callable[[Any], Hashable] | None = None) -> None:
        self._create_fn = create_fn
        self._fn = fn
        self._key_fn = key_fn
        self._states: dict[Hashable, Any] = {}
        self._saving: Iterator[tuple[Hashable, Any]] | None = None
        self._unsaved: tuple[Hashable, Any] | None = None

    def process(self, ordinal: int, inbox: Inbox) -> None:
        room = self.outbox.room()
        if not room:
            return
        out = []
        states, fn, create_fn, key_fn = self._states, self._fn, self._create_fn, self._key_fn
        if key_fn is None:
            state = states.get(self.UNGROUPED_KEY, _NO_KEY)
            if state is _NO_KEY:
                state = states[self.UNGROUPED_KEY] = create_fn()
            for item in inbox.take(room):  # at most one output per input: all fit
                result = fn(state, item)
                if result is not None:
                    out.append(result)
        else:
            get = states.get
            for item in inbox.take(room):
                key = key_fn(item)
                state = get(key, _NO_KEY)
                if state is _NO_KEY:
                    state = states[key] = create_fn()
                result = fn(state, key, item)
                if result is not None:
                    out.append(result)
        self.outbox.offer_many(out)

    def save_to_snapshot(self) -> bool:
        if self._saving is None:
            self._saving = iter(list(self._states.items()))
        entry = self._unsaved
        while True:
            if entry is None:
                entry = next(self._saving, None)
                if entry is None:
                    self._saving = self._unsaved = None
                    return True
            if not self.outbox.offer_to_snapshot(*entry):
                self._unsaved = entry
                return False
            entry = None

    def restore_from_snapshot(self, inbox: Inbox) -> None:
        for key, state in inbox.take():
            self._states[key] = state
