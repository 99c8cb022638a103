"""Event time: how items carry timestamps and how sources generate watermarks.

Timestamps travel with items inside the pipeline as plain tuples `(ts, item)`
(ts in ms, an int): the cheapest object CPython makes, unpacked by the generated
chain loops (`for ts, v0 in batch`) and never seen by user functions, which get
`item`. A stage without timestamps carries bare items. Sinks strip the tuple.

Watermarks are generated per source processor (or per processor of the
"add-timestamps" vertex of `BatchStage.with_timestamps`) by an `EventTimeMapper`,
as Jet's EventTimeMapper with the limiting-lag policy:

- the watermark is `max timestamp seen - allowed_lag_ms`; an item more than
  `allowed_lag_ms` behind the newest one may be late downstream;
- it is emitted right before the item that advanced it, but only once it moved at
  least `throttle_ms` (event time) past the last one emitted, or once the source
  has had no item for `throttle_ms` of wall time (so a stream that pauses still
  gets its last watermark out): at most ~100 watermarks per second of event time in a
  pipeline with a stage that acts on watermarks (windows, map_stateful with a TTL),
  one per second in any other (jetmq.pipeline.lowering chooses, as Jet's planner);
- idleness: the engine has no IDLE marker (Jet's), so a processor that has had no
  item for `idle_timeout_ms` of wall time advances its watermark with the wall
  clock from its last item (`last max - lag + time since that item`), or, never
  having had one, to `wall clock - lag`; so an idle source never holds the
  cluster's watermark back forever. The price: if every source is idle, windows
  close at wall-clock speed (Jet would wait), and an idle source that gets data
  again may see it dropped as late if its clock was behind. A source processor that
  will never have data (item_stream and non-distributed builders on every
  processor but one) ends at once instead: an ended input holds nothing back.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jetmq.core.markers import Watermark

__all__ = [
    "DEFAULT_IDLE_TIMEOUT_MS",
    "NO_WATERMARK",
    "WATERMARK_THROTTLE_MS",
    "EventTimeMapper",
    "EventTimePolicy",
    "SimpleEvent",
    "WindowResult",
]

WATERMARK_THROTTLE_MS = 10
"""Event time a watermark must advance before another is emitted, in a pipeline that
acts on watermarks: at most ~100 per second of event time, each costing every
downstream processor one call."""
DEFAULT_IDLE_TIMEOUT_MS = 60_000
"""Wall time without items after which a source processor counts as idle (Jet's default)."""
NO_WATERMARK = -(1 << 62)
"""Below every real timestamp: nothing emitted yet (the engine's own initial value)."""

NONE, FN, INGESTION, NATIVE = "none", "fn", "ingestion", "native"


@dataclass(frozen=True, slots=True)
class SimpleEvent:
    """The default item of `Sources.item_stream` (Jet's SimpleEvent)."""

    timestamp: int
    sequence: int


@dataclass(frozen=True, slots=True)
class WindowResult:
    """One window's result: `value` of the items with `start <= ts < end` (a session:
    from its first item to its last item + gap), for `key` (None when not grouped)."""

    start: int
    end: int
    key: Any
    value: Any


@dataclass(frozen=True)
class EventTimePolicy:
    """How a source (or the add-timestamps vertex) timestamps its items.

    kind: "none" (no timestamps, no watermarks), "fn" (`timestamp_fn(item)`),
    "ingestion" (wall clock when the processor emits it) or "native" (the timestamp
    the source gives).
    """

    kind: str
    timestamp_fn: Callable[[Any], int] | None = None
    allowed_lag_ms: int = 0
    idle_timeout_ms: int = DEFAULT_IDLE_TIMEOUT_MS
    throttle_ms: int = WATERMARK_THROTTLE_MS

    def __post_init__(self) -> None:
        if self.kind not in (NONE, FN, INGESTION, NATIVE):
            raise ValueError(f"unknown event time kind {self.kind!r}")
        if self.kind == FN and not callable(self.timestamp_fn):
            raise TypeError(f"with_timestamps: timestamp_fn must be callable, got {self.timestamp_fn!r}")
        for name in ("allowed_lag_ms", "idle_timeout_ms", "throttle_ms"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")

    @property
    def has_timestamps(self) -> bool:
        return self.kind != NONE


def wall_ms() -> int:
    return int(time.time() * 1000)


class EventTimeMapper:
    """Timestamps one processor's items and decides its watermarks (see the module doc).

    `map(batch, out)` appends the events of `batch` to `out` (a list of segments:
    lists of events and Watermark objects, in emission order). The raw entries are
    items, or `(ts, item)` pairs for kind "native". Clocks are arguments (seconds of
    `time.monotonic()`, ms of wall time), so tests pass their own.
    """

    __slots__ = ("kind", "_fn", "_lag", "_throttle", "_idle_s", "top", "emitted", "_last_item_at",
                 "_last_item_wall_ms")

    def __init__(self, policy: EventTimePolicy, now: float | None = None, now_wall_ms: int | None = None) -> None:
        self.kind = policy.kind
        self._fn = policy.timestamp_fn
        self._lag = policy.allowed_lag_ms
        self._throttle = max(1, policy.throttle_ms)
        self._idle_s = policy.idle_timeout_ms / 1000
        self.top = NO_WATERMARK  # the greatest timestamp seen
        self.emitted = NO_WATERMARK  # the last watermark emitted
        self._last_item_at = time.monotonic() if now is None else now
        self._last_item_wall_ms: int | None = None

    def map(self, batch: list, out: list, now: float, now_wall_ms: int) -> None:
        """Append `batch`'s events (and the watermarks due after them) to `out`."""
        if not batch:
            return
        self._last_item_at = now
        self._last_item_wall_ms = now_wall_ms
        kind = self.kind
        if kind == NONE:
            out.append(batch)
            return
        if kind == INGESTION:
            self._advance(now_wall_ms, out)
            out.append([(now_wall_ms, item) for item in batch])
            return
        fn, lag, top = self._fn, self._lag, self.top
        limit = self.emitted + self._throttle + lag  # a timestamp above this emits a watermark
        events: list = []
        append = events.append
        # The watermark goes out just before the event that advanced it (as Jet's), so a
        # state or window it closes is closed before that event arrives.
        if kind == FN:
            for item in batch:
                ts = fn(item)
                if ts > top:
                    top = ts
                    if ts >= limit:
                        if events:
                            out.append(events)
                            events = []
                            append = events.append
                        self.emitted = wm = int(ts - lag)
                        out.append(Watermark(wm))
                        limit = wm + self._throttle + lag
                append((ts, item))
        else:  # NATIVE: the entries are (ts, item) events already
            for event in batch:
                ts = event[0]
                if ts > top:
                    top = ts
                    if ts >= limit:
                        if events:
                            out.append(events)
                            events = []
                            append = events.append
                        self.emitted = wm = int(ts - lag)
                        out.append(Watermark(wm))
                        limit = wm + self._throttle + lag
                append(event)
        if events:
            out.append(events)
        self.top = top

    def _advance(self, ts: int, out: list) -> None:
        if ts > self.top:
            self.top = ts
            wm = ts - self._lag
            if wm >= self.emitted + self._throttle:
                self.emitted = wm
                out.append(Watermark(wm))

    def next_idle_deadline(self, now: float, now_wall_ms: float) -> float | None:
        """When `on_idle` next has a watermark to give if no item comes meanwhile: a
        `time.monotonic()` time (`now` or earlier: at once), or None for never. The
        member's loop sleeps until then (`Processor.next_deadline`)."""
        if self.kind == NONE:
            return None
        slack = 0.0001  # the clocks are read in whole ms by on_idle: wake just after, not before
        if self.kind == INGESTION:
            due_wall_ms = self.emitted + self._throttle + self._lag
            return now + max(0.0, (due_wall_ms - now_wall_ms) / 1000) + slack
        last = self._last_item_at
        top = self.top
        if top != NO_WATERMARK and top - self._lag > self.emitted:  # one withheld by the throttle
            return max(now, last + self._throttle / 1000)  # on_idle gives it after a throttle's pause
        if now - last < self._idle_s:
            return last + self._idle_s
        if self._last_item_wall_ms is None or top == NO_WATERMARK:  # the watermark follows the wall clock
            due_wall_ms = self.emitted + self._throttle + self._lag
            return now + max(0.0, (due_wall_ms - now_wall_ms) / 1000) + slack
        needed_ms = self.emitted + self._throttle - (top - self._lag)  # of idleness past the last item
        return max(now, last + needed_ms / 1000 + slack)

    def on_idle(self, now: float, now_wall_ms: int) -> Watermark | None:
        """The watermark to emit when a call found no item: after a pause of a throttle
        period, a withheld one, or (after the idle timeout) one advanced by the wall
        clock; None if none is due."""
        if self.kind == NONE:
            return None
        if self.kind == INGESTION:  # no later item can be older than the clock: exact, not a guess
            wm = now_wall_ms - self._lag
            if wm < self.emitted + self._throttle:
                return None
            self.top = max(self.top, now_wall_ms)
            self.emitted = wm
            return Watermark(wm)
        idle_for = now - self._last_item_at
        if idle_for < self._throttle / 1000:
            return None  # items keep coming: the throttle decides (a pause must last a throttle)
        wm = self.top - self._lag if self.top != NO_WATERMARK else NO_WATERMARK
        if idle_for >= self._idle_s:
            if self._last_item_wall_ms is None:
                wm = max(wm, now_wall_ms - self._lag)
            else:
                wm = max(wm, self.top - self._lag + int(idle_for * 1000)) if self.top != NO_WATERMARK \
                    else max(wm, now_wall_ms - self._lag)
            if wm < self.emitted + self._throttle:
                return None
        if wm <= self.emitted:
            return None
        self.emitted = wm = int(wm)
        return Watermark(wm)
