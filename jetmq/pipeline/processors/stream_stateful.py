"""map_stateful and rolling_aggregate on streams (and map_stateful on batches).

`StreamMapStatefulProcessor` keeps one state per key (after `grouping_key`; behind
a partitioned edge) or one per processor. With `ttl_ms` (timestamped streams only),
a state not touched for `ttl_ms` of event time is evicted when the watermark
passes `last touch + ttl_ms` (as Jet's mapStateful with a TTL), calling
`on_evict_fn(state, key, watermark)` if given, whose result (unless None) is
emitted; an item older than `watermark - ttl_ms` is late: counted in
`lateEventsDropped` and dropped, since its state may be gone.

Snapshots: keyed states as `(key, state)` entries (with `(state, last touch)` under a
TTL), so they follow their keys on restore; a processor's own state under
BroadcastKey(("map-stateful", global index)), taken back by the processor of that
index (with fewer processors after a rescale, the states of the missing indexes are
dropped, with a warning).
"""
from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from jetmq.core.inbox_outbox import Inbox
from jetmq.core.markers import Watermark
from jetmq.core.snapshot import BroadcastKey
from jetmq.pipeline.aggregate import AggregateOperation
from jetmq.pipeline.events import NO_WATERMARK
from jetmq.pipeline.processors.aggregation import SavesEntries

__all__ = ["RollingAggregateProcessor", "StreamMapStatefulProcessor"]

_NO_STATE = object()
_UNGROUPED = "map-stateful"
#: Granularity of the TTL buckets: a state's bucket is its last touch // (ttl / 8).
_TTL_BUCKETS = 8


class StreamMapStatefulProcessor(SavesEntries):
    """See the module doc. Input: `(ts, item)` events if `timestamped`, else items."""

    def __init__(self, create_fn: Callable[[], Any], fn: Callable[..., Any],
                 key_fn: Callable[[Any], Hashable] | None = None, timestamped: bool = False,
                 ttl_ms: int | None = None, on_evict_fn: Callable[..., Any] | None = None) -> None:
        if ttl_ms is not None and not timestamped:
            raise ValueError("map_stateful with ttl_ms needs a stage with timestamps")
        self._create_fn = create_fn
        self._fn = fn
        self._key_fn = key_fn
        self._timestamped = timestamped
        self._ttl = ttl_ms
        self._on_evict = on_evict_fn
        self.states: dict[Hashable, Any] = {}
        self.touched: dict[Hashable, int] = {}  # key -> greatest timestamp applied (TTL only)
        self._buckets: dict[int, set] = {}  # touch bucket -> keys (TTL only)
        self._grain = max(1, (ttl_ms or 0) // _TTL_BUCKETS)
        self.watermark = NO_WATERMARK
        self._out: list = []
        self._out_wm: Watermark | None = None

    def _key(self) -> Hashable:
        return BroadcastKey((_UNGROUPED, self.context.global_index))

    def process(self, ordinal: int, inbox: Inbox) -> None:
        room = self.outbox.room()
        if not room:
            return
        out = []
        append = out.append
        states, fn, create_fn, key_fn = self.states, self._fn, self._create_fn, self._key_fn
        get = states.get
        if not self._timestamped:
            own = self._key() if key_fn is None else None
            for item in inbox.take(room):  # at most one output per input: all fit
                key = own if key_fn is None else key_fn(item)
                state = get(key, _NO_STATE)
                if state is _NO_STATE:
                    state = states[key] = create_fn()
                result = fn(state, item) if key_fn is None else fn(state, key, item)
                if result is not None:
                    append(result)
            self.outbox.offer_many(out)
            return
        ttl = self._ttl
        own = self._key() if key_fn is None else None
        late_limit = NO_WATERMARK if ttl is None else self.watermark - ttl
        late = 0
        for ts, item in inbox.take(room):
            if ts < late_limit:
                late += 1
                continue
            key = own if key_fn is None else key_fn(item)
            state = get(key, _NO_STATE)
            if state is _NO_STATE:
                state = states[key] = create_fn()
            if ttl is not None:
                self._touch(key, ts)
            result = fn(state, item) if key_fn is None else fn(state, key, item)
            if result is not None:
                append((ts, result))
        if late:
            self.context.metrics["lateEventsDropped"] = self.context.metrics.get("lateEventsDropped", 0) + late
        self.outbox.offer_many(out)

    def _touch(self, key: Hashable, ts: int) -> None:
        last = self.touched.get(key)
        if last is not None and last >= ts:
            return
        grain = self._grain
        if last is not None:
            old = last // grain
            if old == ts // grain:
                self.touched[key] = ts
                return
            keys = self._buckets.get(old)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._buckets[old]
        self.touched[key] = ts
        self._buckets.setdefault(ts // grain, set()).add(key)

    def _evict(self, wm: int) -> list:
        """Remove the states last touched before `wm - ttl`; the on-evict outputs."""
        limit = wm - self._ttl
        grain, buckets = self._grain, self._buckets
        out = []
        for bucket in sorted(b for b in buckets if b * grain < limit):
            keys = buckets[bucket]
            expired = [k for k in keys if self.touched[k] < limit]
            for key in expired:
                keys.discard(key)
                del self.touched[key]
                state = self.states.pop(key)
                if self._on_evict is not None:
                    result = self._on_evict(state, key, wm) if self._key_fn is not None else \
                        self._on_evict(state, wm)
                    if result is not None:
                        out.append((wm, result))
            if not keys:
                del buckets[bucket]
        return out

    def try_process_watermark(self, watermark: Watermark) -> bool:
        if self._out_wm is None:
            self.watermark = watermark.timestamp
            self._out = self._evict(watermark.timestamp) if self._ttl is not None else []
            self._out_wm = watermark
        outbox = self.outbox
        if self._out:
            taken = outbox.offer_many(self._out)
            self._out = self._out[taken:]
            if self._out:
                return False
        if not outbox.offer(self._out_wm):
            return False
        self._out_wm = None
        return True

    def _entries(self) -> list[tuple[Any, Any]]:
        if self._ttl is None:
            return list(self.states.items())
        return [(key, (state, self.touched[key])) for key, state in self.states.items()]

    def restore_from_snapshot(self, inbox: Inbox) -> None:
        for key, value in inbox.take():
            if type(key) is BroadcastKey:
                if key != self._key():
                    if key.key[1] >= self.context.total_parallelism:
                        self.context.logger.warning("map_stateful: dropped the state of processor %d, "
                                                    "which this execution does not have", key.key[1])
                    continue
            if self._ttl is None:
                self.states[key] = value
            else:
                state, touched = value
                self.states[key] = state
                self._touch(key, touched)


class RollingAggregateProcessor(SavesEntries):
    """Emits, for each item, the aggregate so far: `(key, op.export(acc))` per key, or
    `op.export(acc)` over all items (then it runs behind an edge that sends every item
    to one processor). Accumulators are saved in snapshots by key."""

    def __init__(self, op: AggregateOperation, key_fn: Callable[[Any], Hashable] | None,
                 timestamped: bool) -> None:
        self._op = op
        self._key_fn = key_fn
        self._timestamped = timestamped
        self.accs: dict[Hashable, Any] = {}

    def process(self, ordinal: int, inbox: Inbox) -> None:
        room = self.outbox.room()
        if not room:
            return
        accs, key_fn, op = self.accs, self._key_fn, self._op
        create, accumulate, export = op.create, op.accumulate, op.export
        get = accs.get
        out = []
        append = out.append
        for entry in inbox.take(room):
            if self._timestamped:
                ts, item = entry
            else:
                item = entry
            key = None if key_fn is None else key_fn(item)
            acc = get(key, _NO_STATE)
            acc = accs[key] = accumulate(create() if acc is _NO_STATE else acc, item)
            result = export(acc) if key_fn is None else (key, export(acc))
            append((ts, result) if self._timestamped else result)
        self.outbox.offer_many(out)

    def _entries(self) -> list[tuple[Any, Any]]:
        return list(self.accs.items())

    def restore_from_snapshot(self, inbox: Inbox) -> None:
        combine = self._op.combine
        for key, acc in inbox.take():
            mine = self.accs.get(key, _NO_STATE)
            self.accs[key] = acc if mine is _NO_STATE else combine(mine, acc)
