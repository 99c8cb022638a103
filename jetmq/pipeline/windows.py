"""Window definitions and the frame and session arithmetic behind window processors.

Sliding and tumbling windows are computed from frames, as Jet's SlidingWindowP: a
frame is a `step_ms`-long slice of event time, named by its end (exclusive), and a
window `[end - size_ms, end)` is the combination of its `size_ms / step_ms` frames.
A tumbling window is a sliding one whose step is its size. Windows and frames are
aligned to multiples of the step from timestamp 0.

Sessions, merged as by Jet 4.0's SessionWindowP: an item at `ts` covers `[ts, ts +
gap_ms)`; the overlapping intervals of one key form one session `[first ts, last ts +
gap_ms)`, so items less than `gap_ms` apart are in one session (intervals that only
touch, items exactly `gap_ms` apart, are not merged). A session is complete once the
watermark reaches its end, as a tumbling window is: every later item has `ts >=
watermark >= end`, so its interval cannot overlap the session. Its result, timestamped
`end - 1` (as every window result), then goes out before that watermark and is not
behind any earlier one (they were all below `end`, or it would have closed then).
Jet 4.0 keeps a session until the watermark passes its end, so after forwarding a
watermark equal to its end it emits the result behind it, late for a window after.
"""
from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from jetmq.pipeline.aggregate import AggregateOperation

__all__ = [
    "SessionTable",
    "WindowDefinition",
    "frame_end",
    "window_ends_to_emit",
    "windows_of_frame",
]


@dataclass(frozen=True)
class WindowDefinition:
    """Which windows an aggregation computes: `tumbling(size_ms)`, `sliding(size_ms,
    step_ms)` or `session(gap_ms)`."""

    kind: str
    size_ms: int = 0
    step_ms: int = 0
    gap_ms: int = 0

    def __post_init__(self) -> None:
        if self.kind == "session":
            _check_positive("session", "gap_ms", self.gap_ms)
        elif self.kind == "sliding":
            _check_positive("sliding", "size_ms", self.size_ms)
            _check_positive("sliding", "step_ms", self.step_ms)
            if self.size_ms % self.step_ms:
                raise ValueError(f"WindowDefinition.sliding: size_ms ({self.size_ms}) must be a multiple "
                                 f"of step_ms ({self.step_ms})")
        else:
            raise ValueError(f"unknown window kind {self.kind!r}")

    @staticmethod
    def tumbling(size_ms: int) -> WindowDefinition:
        """Adjacent windows of `size_ms`: [0, size), [size, 2*size), ..."""
        _check_positive("tumbling", "size_ms", size_ms)
        return WindowDefinition("sliding", size_ms, size_ms)

    @staticmethod
    def sliding(size_ms: int, step_ms: int) -> WindowDefinition:
        """Windows of `size_ms` starting every `step_ms` (a divisor of `size_ms`)."""
        return WindowDefinition("sliding", size_ms, step_ms)

    @staticmethod
    def session(gap_ms: int) -> WindowDefinition:
        """Per key, runs of items less than `gap_ms` apart."""
        return WindowDefinition("session", gap_ms=gap_ms)

    @property
    def is_session(self) -> bool:
        return self.kind == "session"

    def describe(self) -> str:
        if self.is_session:
            return f"session({self.gap_ms})"
        if self.size_ms == self.step_ms:
            return f"tumbling({self.size_ms})"
        return f"sliding({self.size_ms}, {self.step_ms})"


def _check_positive(kind: str, name: str, value: object) -> None:
    if type(value) is not int or value < 1:
        raise ValueError(f"WindowDefinition.{kind}: {name} must be an int >= 1, got {value!r}")


def frame_end(ts: int, step: int) -> int:
    """The end (exclusive) of the frame holding `ts`: the least multiple of `step` above it."""
    return ts - ts % step + step


def windows_of_frame(frame: int, size: int, step: int) -> range:
    """The ends of the windows that hold frame `frame` (given by its end)."""
    return range(frame, frame + size, step)


def window_ends_to_emit(frames: Iterable[int], size: int, step: int, wm: int | None,
                        after: int | None = None) -> list[int]:
    """The ends, ascending, of the windows holding any of `frames` whose end is above
    `after` (the previous watermark: those windows were emitted) and at most `wm`
    (None: no bound): the windows a watermark `wm` completes."""
    ends = set()
    for frame in frames:
        for end in range(frame, frame + size, step):
            if wm is not None and end > wm:
                break
            if after is None or end > after:
                ends.add(end)
    return sorted(ends)


class SessionTable:
    """Sessions per key, made and merged as items arrive; closed by watermark.

    A session is `[start, end, acc]` (covering `[start, end)`); a key's sessions are
    kept sorted and disjoint. `add_item` folds an item (at `ts`) in with
    `op.accumulate`; when its interval bridges two sessions they become one, their
    accumulators merged with `op.combine` (no `deduct`: a session only grows).

    Deadlines are lazy: every key with sessions is registered under at least one end
    at or before its first session's end, and a session that grows keeps the
    registration it had. `close` looks at the keys whose registered ends the
    watermark reached, closes what really ended and registers the rest again, so an
    item that extends a session (every item of an in-order key) costs no heap or set
    operation: measured ~1.1 -> ~0.55 us per item on NEXMark q4's auctions and bids.
    """

    def __init__(self, gap: int, op: AggregateOperation) -> None:
        self.gap = gap
        self._op = op
        self.sessions: dict[Hashable, list[list]] = {}
        self._deadlines: dict[int, set] = {}  # session end -> keys with a session ending there
        self._heap: list[int] = []  # the ends in _deadlines (and stale ones, skipped when popped)

    def __len__(self) -> int:
        return sum(map(len, self.sessions.values()))

    def add_item(self, key: Hashable, ts: int, item: Any) -> None:
        sessions = self.sessions.get(key)
        if sessions:
            last = sessions[-1]
            if last[0] <= ts:  # no session before the last one reaches ts (they are disjoint)
                end = ts + self.gap
                if ts < last[1]:  # in the last session: it grows to `end` at most
                    if end > last[1]:
                        last[1] = end
                    last[2] = self._op.accumulate(last[2], item)
                    return
                # after the last session, touching none: a new one (the key's registration,
                # at or before its first session's end, covers it)
                sessions.append([ts, end, self._op.accumulate(self._op.create(), item)])
                return
        session = self._resolve(key, ts, ts + self.gap, None)
        session[2] = self._op.accumulate(session[2], item)

    def _resolve(self, key: Hashable, start: int, end: int, acc: Any) -> list:
        """The session of `key` that now covers [start, end), merging and creating as
        needed; `acc` (a restored session's accumulator) is combined into it."""
        sessions = self.sessions.get(key)
        if sessions is None:
            sessions = self.sessions[key] = []
        # the sessions overlapping [start, end): a run of consecutive ones
        first = 0
        while first < len(sessions) and sessions[first][1] <= start:
            first += 1
        last = first
        while last < len(sessions) and sessions[last][0] < end:
            last += 1
        op = self._op
        if first == last:  # none overlaps: a new session
            session = [start, end, op.create() if acc is None else acc]
            sessions.insert(first, session)
            self._add_deadline(key, end)
            return session
        session = sessions[first]  # the merged session ends no earlier than any part: registrations hold
        for other in sessions[first + 1:last]:
            session[2] = op.combine(session[2], other[2])
            session[1] = max(session[1], other[1])
        del sessions[first + 1:last]
        if acc is not None:
            session[2] = op.combine(session[2], acc)
        session[0] = min(session[0], start)
        session[1] = max(session[1], end)
        return session

    def _add_deadline(self, key: Hashable, end: int) -> None:
        keys = self._deadlines.get(end)
        if keys is None:
            keys = self._deadlines[end] = set()
            heapq.heappush(self._heap, end)
        keys.add(key)

    def close(self, wm: int | None) -> list[tuple[Hashable, int, int, Any]]:
        """Remove and return `(key, start, end, acc)` of every session ending at or
        before `wm` (every session for None), by end ascending."""
        closing: set = set()
        heap, deadlines = self._heap, self._deadlines
        while heap and (wm is None or heap[0] <= wm):
            keys = deadlines.pop(heapq.heappop(heap), None)
            if keys:
                closing.update(keys)
        closed = []
        for key in closing:
            sessions = self.sessions.get(key)
            if sessions is None:
                continue  # a stale registration of a key closed earlier
            n = 0
            while n < len(sessions) and (wm is None or sessions[n][1] <= wm):
                start, end, acc = sessions[n]
                closed.append((key, start, end, acc))
                n += 1
            del sessions[:n]
            if not sessions:
                del self.sessions[key]
            else:  # what is left ends after wm: register the key again, at its first end
                self._add_deadline(key, sessions[0][1])
        closed.sort(key=lambda s: (s[2], s[1]))
        return closed

    def restore(self, key: Hashable, sessions: list) -> None:
        for start, end, acc in sessions:
            self._resolve(key, start, end, acc)
