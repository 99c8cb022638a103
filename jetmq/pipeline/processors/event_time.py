"""Processors that put timestamps on items and emit watermarks.

`SegmentEmitter` is the output side they share: the events an EventTimeMapper made
wait as segments (lists of events, and Watermarks) and go out in order, as the
outbox takes them. A watermark seals the outbox until the engine drains it, so at
most one goes out per call. Before a snapshot everything pending is emitted (the
barrier follows it), so a source's saved offset always matches what it emitted.
"""
from __future__ import annotations

import time
from collections import deque
from itertools import islice

from jetmq.core.inbox_outbox import Inbox
from jetmq.core.markers import Watermark
from jetmq.core.processor import DEFAULT_POLL_S, Processor
from jetmq.pipeline.events import EventTimeMapper, EventTimePolicy, wall_ms

__all__ = ["InsertWatermarksProcessor", "SegmentEmitter", "StreamSourceProcessor"]

#: How soon a streaming source that cannot tell when it has more (a socket, a
#: SourceBuilder's fill function) is called again after a call that found entries.
FAST_POLL_S = 0.001


class SegmentEmitter(Processor):
    """Emits pending segments: `self._segments`, a deque of event lists and Watermarks."""

    _segments: deque
    _position: int  # events of the head list already emitted

    def _init_segments(self) -> None:
        self._segments = deque()
        self._position = 0

    def _emit_pending(self) -> bool:
        """Offer what the outbox takes; True once nothing is pending."""
        segments, outbox = self._segments, self.outbox
        while segments:
            head = segments[0]
            if type(head) is Watermark:
                if not outbox.offer(head):
                    return False
                segments.popleft()
                return not segments  # the outbox is sealed until drained
            room = outbox.room()
            if not room:
                return False
            position = self._position
            taken = outbox.offer_many(islice(head, position, None) if position else head)
            position += taken
            if position < len(head):
                self._position = position
                return False
            segments.popleft()
            self._position = 0
        return True

    def _pending_count(self) -> int:
        return sum(1 for s in self._segments if type(s) is not Watermark)


class StreamSourceProcessor(SegmentEmitter):
    """Base of the streaming sources: `fill(room, now)` returns up to `room` new raw
    entries (items; `(ts, item)` pairs when `native_timestamps`), which the
    EventTimeMapper of the stage's policy turns into events and watermarks.

    `active` False (set in `start()`) makes the processor end at once: a source with
    one instance in the cluster ends on every other processor, so that their empty
    outputs hold no watermark back. `ended` True: the source has no more items.
    """

    native_timestamps = False

    def __init__(self, policy: EventTimePolicy) -> None:
        self._policy = policy
        self.active = True
        self.ended = False
        self._poll_s = DEFAULT_POLL_S  # see fill_deadline()

    def init_hook(self) -> None:
        self._init_segments()
        now = time.monotonic()
        self._mapper = EventTimeMapper(self._policy, now)
        self.start(now)

    # ---- for subclasses ----

    def start(self, now: float) -> None:
        """Set up (open files, connect); may set `self.active = False`."""

    def fill(self, room: int, now: float) -> list:
        """Up to `room` new raw entries (never block: [] when nothing is ready)."""
        raise NotImplementedError

    def save_state(self) -> bool:
        """Offer the source's offsets to the snapshot; False to be called again."""
        return True

    # ---- the Processor contract ----

    def complete(self) -> bool:
        if not self.active:
            return True
        if not self._emit_pending():
            return False
        if self.ended:
            return True
        room = self.outbox.room()
        if not room:
            return False
        now = time.monotonic()
        raw = self.fill(room, now)
        self._poll_s = FAST_POLL_S if raw else min(2 * self._poll_s, DEFAULT_POLL_S)
        if raw:
            if self.native_timestamps and self._mapper.kind != "native":
                raw = [item for _ts, item in raw]
            self._mapper.map(raw, self._segments, now, wall_ms())
        else:
            watermark = self._mapper.on_idle(now, wall_ms())
            if watermark is not None:
                self._segments.append(watermark)
        self._emit_pending()
        return False

    def save_to_snapshot(self) -> bool:
        if not self.active:
            return True
        if not self._emit_pending():
            return False
        return self.save_state()

    def fill_deadline(self, now: float) -> float | None:
        """When `fill` may next have entries (a `time.monotonic()` time; None: never
        without a call for another reason). The default, for a source that cannot
        tell (it polls something outside): FAST_POLL_S after a call that found
        entries, twice as long after each call that found none, DEFAULT_POLL_S at most."""
        return now + self._poll_s

    def next_deadline(self) -> float | None:
        if not self.active:
            return None
        now = time.monotonic()
        if self._segments:
            return now
        mapper = self._mapper.next_idle_deadline(now, time.time() * 1000)
        if self.ended:
            return mapper
        fill = self.fill_deadline(now)
        if fill is None or mapper is None:
            return fill if mapper is None else mapper
        return min(fill, mapper)


class InsertWatermarksProcessor(SegmentEmitter):
    """`with_timestamps` on a stage that has none: wraps each item as `(ts, item)` and
    emits watermarks, per processor (see jetmq.pipeline.events). Its watermark
    follows the order in which this processor sees items, so what is late downstream
    does not depend on how items were batched."""

    def __init__(self, policy: EventTimePolicy) -> None:
        self._policy = policy

    def init_hook(self) -> None:
        self._init_segments()
        self._mapper = EventTimeMapper(self._policy, time.monotonic())

    def process(self, ordinal: int, inbox: Inbox) -> None:
        if not self._emit_pending():
            return
        self._mapper.map(inbox.take(), self._segments, time.monotonic(), wall_ms())
        self._emit_pending()

    def try_process(self) -> bool:
        if not self._emit_pending():
            return False
        watermark = self._mapper.on_idle(time.monotonic(), wall_ms())
        if watermark is not None:
            self._segments.append(watermark)
        return self._emit_pending()

    def next_deadline(self) -> float | None:
        now = time.monotonic()
        if self._segments:
            return now
        return self._mapper.next_idle_deadline(now, time.time() * 1000)

    def try_process_watermark(self, watermark: Watermark) -> bool:
        return True  # upstream watermarks (none for a batch) give way to this stage's own

    def complete(self) -> bool:
        return self._emit_pending()

    def save_to_snapshot(self) -> bool:
        return self._emit_pending()
