"""Window aggregation processors.

Sliding and tumbling windows run in two stages, as Jet's SlidingWindowP. Stage one
runs where the items are (a local edge in): `FrameAccumulateProcessor` folds each
`(ts, item)` into the accumulator of its (frame, key); a watermark `W` sends on every
frame that ended by `W` as `(key, frame_end, acc)`, then `W`. Stage two sits behind a
distributed edge partitioned by key: `WindowCombineProcessor` combines the frames of
a key and, once the coalesced watermark reaches a window's end, emits `(end - 1,
WindowResult(start, end, key, value))` (Jet's timestamp of a window result).

Session windows run in one stage, as Jet's SessionWindowP: `SessionWindowProcessor`
sits behind a distributed edge partitioned by the grouping key (all-to-one when not
keyed), so every item of a key meets on one processor, under the watermark coalesced
over every member. (Two stages cannot be right for sessions: a member's first stage
cannot know how early a session still open on another member starts, so the second
would emit a session before the part of it that ends later arrives.)

Watermarks and results, in every window processor (Jet's rule): a watermark `W`
first emits every window or session it completes (those ending at or before `W`),
then is forwarded; a result's timestamp `end - 1` is then never behind a watermark
already forwarded (those were all below `end`), so a window after it never drops it
as late.

Late items: an item whose timestamp is below the watermark the processor receiving
it has had is counted in `context.metrics["lateEventsDropped"]` and dropped. For
sliding windows stage one decides it from its own member's stream.

Snapshots: stage one of a sliding window sends everything it holds on before the
barrier (Jet does the same), so it saves nothing; stage two and the session processor
save one entry per key (all its frames or sessions; an unkeyed session window under
its vertex's name, which is where its all-to-one edge goes), so the state follows its
keys to whichever processor owns them after a restore, plus the watermark under a
BroadcastKey (the least one restored wins). At the end of the input everything left
is emitted, by window end.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from typing import Any

from jetmq.core.inbox_outbox import Inbox
from jetmq.core.markers import Watermark
from jetmq.core.processor import Processor
from jetmq.core.snapshot import BroadcastKey
from jetmq.pipeline.aggregate import AggregateOperation
from jetmq.pipeline.events import NO_WATERMARK, WindowResult
from jetmq.pipeline.processors.aggregation import SavesEntries, is_counting
from jetmq.pipeline.processors.fused import Step, compile_chain
from jetmq.pipeline.windows import SessionTable, WindowDefinition, window_ends_to_emit

__all__ = [
    "DropLateEventsProcessor",
    "FrameAccumulateProcessor",
    "SessionWindowProcessor",
    "WindowCombineProcessor",
]

LATE = "lateEventsDropped"
_WM_KEY = BroadcastKey("window-watermark")
_MISSING = object()


class _Emitting(SavesEntries):
    """Output through a pending iterator, then (optionally) a watermark."""

    _pending: Iterator[Any] | None = None
    _pending_wm: Watermark | None = None

    def _drain(self) -> bool:
        """Emit the pending outputs, then the pending watermark; True when all are out."""
        outbox = self.outbox
        if self._pending is not None:
            room = outbox.room()
            if not room or outbox.offer_many(self._pending) == room:
                return False
            self._pending = None
        if self._pending_wm is not None:
            if not outbox.offer(self._pending_wm):
                return False
            self._pending_wm = None
        return True

    def _count_late(self, count: int = 1) -> None:
        metrics = self.context.metrics
        metrics[LATE] = metrics.get(LATE, 0) + count


class FrameAccumulateProcessor(_Emitting):
    """Stage one of a sliding or tumbling window: accumulators per (frame, key)."""

    def __init__(self, window: WindowDefinition, op: AggregateOperation,
                 key_fn: Callable[[Any], Hashable] | None) -> None:
        self._step = window.step_ms
        self._op = op
        self._key_fn = key_fn
        self._counting = is_counting(op)
        self.frames: dict[int, dict[Hashable, Any]] = {}
        self.watermark = NO_WATERMARK

    def process(self, ordinal: int, inbox: Inbox) -> None:
        frames, step, key_fn, wm = self.frames, self._step, self._key_fn, self.watermark
        late = 0
        if self._counting:
            for ts, item in inbox.take():
                if ts < wm:
                    late += 1
                    continue
                end = ts - ts % step + step
                frame = frames.get(end)
                if frame is None:
                    frame = frames[end] = {}
                key = None if key_fn is None else key_fn(item)
                frame[key] = frame.get(key, 0) + 1
        else:
            create, accumulate = self._op.create, self._op.accumulate
            for ts, item in inbox.take():
                if ts < wm:
                    late += 1
                    continue
                end = ts - ts % step + step
                frame = frames.get(end)
                if frame is None:
                    frame = frames[end] = {}
                key = None if key_fn is None else key_fn(item)
                acc = frame.get(key, _MISSING)
                frame[key] = accumulate(create() if acc is _MISSING else acc, item)
        if late:
            self._count_late(late)

    def _flush(self, wm: int | None) -> list:
        frames = self.frames
        out = []
        for end in sorted(e for e in frames if wm is None or e <= wm):
            out.extend((key, end, acc) for key, acc in frames.pop(end).items())
        return out

    def try_process_watermark(self, watermark: Watermark) -> bool:
        if self._pending is None and self._pending_wm is None:
            self.watermark = watermark.timestamp
            self._pending = iter(self._flush(watermark.timestamp))
            self._pending_wm = watermark
        return self._drain()

    def complete(self) -> bool:
        if self._pending is None and self.frames:
            self._pending = iter(self._flush(None))
        return self._drain()

    def save_to_snapshot(self) -> bool:
        return self.complete()  # send every frame on before the barrier: no state to save


class WindowCombineProcessor(_Emitting):
    """Stage two of a sliding or tumbling window: combines frames per key, emits windows."""

    def __init__(self, window: WindowDefinition, op: AggregateOperation, keyed: bool) -> None:
        self._size = window.size_ms
        self._step = window.step_ms
        self._op = op
        self._keyed = keyed
        self.frames: dict[int, dict[Hashable, Any]] = {}
        self.watermark = NO_WATERMARK
        self._restored_wm: int | None = None

    def process(self, ordinal: int, inbox: Inbox) -> None:
        frames, wm, combine = self.frames, self.watermark, self._op.combine
        late = 0
        for key, end, acc in inbox.take():
            if end <= wm:  # its first window was emitted already (never expected: see the module doc)
                late += 1
                continue
            frame = frames.get(end)
            if frame is None:
                frame = frames[end] = {}
            mine = frame.get(key, _MISSING)
            frame[key] = acc if mine is _MISSING else combine(mine, acc)
        if late:
            self._count_late(late)

    def _windows(self, wm: int | None) -> list:
        """The (ts, WindowResult) of every window ending after the last watermark and by
        `wm`; evicts frames no later window needs."""
        frames, size, step, op = self.frames, self._size, self._step, self._op
        out = []
        keyed = self._keyed
        after = self.watermark if self.watermark != NO_WATERMARK else None
        for end in window_ends_to_emit(frames, size, step, wm, after):
            start = end - size
            if size == step:
                frame = frames.pop(end, None)
                if frame:
                    out.extend((end - 1, WindowResult(start, end, key if keyed else None, op.finish(acc)))
                               for key, acc in frame.items())
                continue
            accs: dict[Hashable, Any] = {}
            for frame_end in range(start + step, end + step, step):
                frame = frames.get(frame_end)
                if not frame:
                    continue
                for key, acc in frame.items():
                    mine = accs.get(key, _MISSING)
                    accs[key] = op.combine(op.create() if mine is _MISSING else mine, acc)
            out.extend((end - 1, WindowResult(start, end, key if keyed else None, op.finish(acc)))
                       for key, acc in accs.items())
        if wm is None:
            frames.clear()
        else:
            for frame_end in [f for f in frames if f <= wm - size + step]:
                del frames[frame_end]
        return out

    def try_process_watermark(self, watermark: Watermark) -> bool:
        if self._pending is None and self._pending_wm is None:
            self._pending = iter(self._windows(watermark.timestamp))
            self.watermark = watermark.timestamp
            self._pending_wm = watermark
        return self._drain()

    def complete(self) -> bool:
        if self._pending is None and self.frames:
            self._pending = iter(self._windows(None))
        return self._drain()

    def _entries(self) -> list[tuple[Any, Any]]:
        by_key: dict[Hashable, dict[int, Any]] = {}
        for end, frame in self.frames.items():
            for key, acc in frame.items():
                by_key.setdefault(key, {})[end] = acc
        return [(_WM_KEY, self.watermark), *by_key.items()]

    def restore_from_snapshot(self, inbox: Inbox) -> None:
        frames, combine = self.frames, self._op.combine
        for key, value in inbox.take():
            if key == _WM_KEY and type(key) is BroadcastKey:
                self._restored_wm = value if self._restored_wm is None else min(self._restored_wm, value)
                continue
            for end, acc in value.items():
                frame = frames.setdefault(end, {})
                mine = frame.get(key, _MISSING)
                frame[key] = acc if mine is _MISSING else combine(mine, acc)

    def finish_snapshot_restore(self) -> bool:
        if self._restored_wm is not None:
            self.watermark = self._restored_wm
            self._restored_wm = None
        return True


class DropLateEventsProcessor(Processor):
    """Before a session window's distributed edge, where the items are (a local edge in):
    passes `(ts, item)` events and watermarks on, dropping (and counting) the events behind
    the watermark this processor has had. The session processor beyond the edge judges
    lateness against the watermark coalesced over every member, which may lag this one:
    without this stage, whether an item is late would depend on how fast other members'
    watermarks travel. An event not late here is never late there (its own stream's
    watermarks reach the session processor in order, ahead of it).

    `pre_steps`, a chain of map / filter / peek steps (at most one output per input)
    that fed only this window, runs here first, on the same events, instead of in a
    vertex of its own before a local edge."""

    watermark = NO_WATERMARK

    def __init__(self, pre_steps: tuple[Step, ...] = ()) -> None:
        self._pre_steps = tuple(pre_steps)
        self._chain: Callable[..., Iterator[Any]] | None = None

    def init_hook(self) -> None:
        if self._pre_steps:
            self._chain = compile_chain(self._pre_steps, self.context.logger.info, timestamped=True)

    def process(self, ordinal: int, inbox: Inbox) -> None:
        room = self.outbox.room()
        if not room:
            return
        events = inbox.take(room)  # at most one output per event: all of them fit
        if self._chain is not None:
            events = list(self._chain(events))
        wm = self.watermark
        kept = [event for event in events if event[0] >= wm]
        self.outbox.offer_many(kept)
        late = len(events) - len(kept)
        if late:
            metrics = self.context.metrics
            metrics[LATE] = metrics.get(LATE, 0) + late

    def try_process_watermark(self, watermark: Watermark) -> bool:
        if not self.outbox.offer(watermark):
            return False
        self.watermark = watermark.timestamp
        return True


class SessionWindowProcessor(_Emitting):
    """Session windows in one stage: sessions per key made from `(ts, item)` events,
    emitted as `(end - 1, WindowResult(start, end, key, value))` once the watermark
    reaches their end (key None when not keyed)."""

    def __init__(self, window: WindowDefinition, op: AggregateOperation,
                 key_fn: Callable[[Any], Hashable] | None) -> None:
        self._op = op
        self._key_fn = key_fn
        self.table = SessionTable(window.gap_ms, op)
        self.watermark = NO_WATERMARK
        self._restored_wm: int | None = None

    def process(self, ordinal: int, inbox: Inbox) -> None:
        add, key_fn, wm = self.table.add_item, self._key_fn, self.watermark
        late = 0
        for ts, item in inbox.take():
            if ts < wm:
                late += 1
                continue
            add(None if key_fn is None else key_fn(item), ts, item)
        if late:
            self._count_late(late)

    def _results(self, wm: int | None) -> list:
        finish = self._op.finish
        return [(end - 1, WindowResult(start, end, key, finish(acc)))
                for key, start, end, acc in self.table.close(wm)]

    def try_process_watermark(self, watermark: Watermark) -> bool:
        if self._pending is None and self._pending_wm is None:
            self.watermark = watermark.timestamp
            self._pending = iter(self._results(watermark.timestamp))  # out before the watermark
            self._pending_wm = watermark
        return self._drain()

    def complete(self) -> bool:
        if self._pending is None and self.table.sessions:
            self._pending = iter(self._results(None))
        return self._drain()

    def _entries(self) -> list[tuple[Any, Any]]:
        keyed = self._key_fn is not None
        entries = [(key if keyed else self.context.vertex_name, [tuple(s) for s in sessions])
                   for key, sessions in self.table.sessions.items()]
        return [(_WM_KEY, self.watermark), *entries]

    def restore_from_snapshot(self, inbox: Inbox) -> None:
        keyed = self._key_fn is not None
        for key, value in inbox.take():
            if key == _WM_KEY and type(key) is BroadcastKey:
                self._restored_wm = value if self._restored_wm is None else min(self._restored_wm, value)
            else:
                self.table.restore(key if keyed else None, value)

    def finish_snapshot_restore(self) -> bool:
        if self._restored_wm is not None:
            self.watermark = self._restored_wm
            self._restored_wm = None
        return True
