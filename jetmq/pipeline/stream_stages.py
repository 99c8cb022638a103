"""Stages of a streaming pipeline: StreamSourceStage, StreamStage, StreamStageWithKey,
and the windowed stages StageWithWindow and StageWithKeyAndWindow.

    p = Pipeline()
    (p.read_from(Sources.item_stream(100))
      .with_native_timestamps(0)
      .grouping_key(lambda e: e.sequence % 10)
      .window(WindowDefinition.tumbling(1000))
      .aggregate(AggregateOperations.counting())
      .write_to(Sinks.observable("counts")))
"""
from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from jetmq.pipeline.aggregate import AggregateOperation
from jetmq.pipeline.events import EventTimePolicy
from jetmq.pipeline.stages import GeneralStage
from jetmq.pipeline.stream_sources import StreamSource
from jetmq.pipeline.transforms import (
    MapStatefulTransform,
    RollingAggregateTransform,
    StreamSourceTransform,
    TimestampTransform,
    WindowAggregateTransform,
    _check_callable,
    fn_name,
)
from jetmq.pipeline.windows import WindowDefinition

if TYPE_CHECKING:
    from jetmq.pipeline.pipeline import Pipeline

__all__ = [
    "StageWithKeyAndWindow",
    "StageWithWindow",
    "StreamSourceStage",
    "StreamStage",
    "StreamStageWithKey",
    "timestamps_policy",
]


def _check_lag(step: str, allowed_lag_ms: object) -> int:
    if type(allowed_lag_ms) is not int or allowed_lag_ms < 0:
        raise ValueError(f"{step}: allowed_lag_ms must be an int >= 0, got {allowed_lag_ms!r}")
    return allowed_lag_ms


def timestamps_policy(step: str, timestamp_fn: Callable[[Any], int], allowed_lag_ms: int,
                      idle_timeout_ms: int | None = None) -> EventTimePolicy:
    _check_callable(step, "timestamp_fn", timestamp_fn)
    _check_lag(step, allowed_lag_ms)
    extra = {} if idle_timeout_ms is None else {"idle_timeout_ms": idle_timeout_ms}
    return EventTimePolicy("fn", timestamp_fn, allowed_lag_ms, **extra)


class StreamSourceStage:
    """What `read_from(stream_source)` gives: choose how items get their event time,
    once, to get the StreamStage (Jet 4.0's StreamSourceStage)."""

    __slots__ = ("_pipeline", "_source", "_stage")

    def __init__(self, pipeline: Pipeline, source: StreamSource) -> None:
        self._pipeline = pipeline
        self._source = source
        self._stage: StreamStage | None = None

    def with_timestamps(self, timestamp_fn: Callable[[Any], int], allowed_lag_ms: int) -> StreamStage:
        """Event time `timestamp_fn(item)` (ms); watermarks trail the greatest timestamp
        a source processor has seen by `allowed_lag_ms`."""
        policy = timestamps_policy("with_timestamps", timestamp_fn, allowed_lag_ms,
                                   self._source.idle_timeout_ms)
        return self._read(policy)

    def with_ingestion_timestamps(self) -> StreamStage:
        """Event time: the wall clock (ms) when the source emits the item; no lag."""
        return self._read(EventTimePolicy("ingestion", idle_timeout_ms=self._source.idle_timeout_ms))

    def with_native_timestamps(self, allowed_lag_ms: int) -> StreamStage:
        """Event time: the timestamp the source gives each item (item_stream, a
        timestamped SourceBuilder); a source without one is refused here."""
        policy = EventTimePolicy("native", None, _check_lag("with_native_timestamps", allowed_lag_ms),
                                 self._source.idle_timeout_ms)
        return self._read(policy)

    def without_timestamps(self) -> StreamStage:
        """No event time and no watermarks: the stream cannot be windowed (until a later
        `with_timestamps`)."""
        return self._read(EventTimePolicy("none"))

    def _read(self, policy: EventTimePolicy) -> StreamStage:
        if self._stage is not None:
            raise ValueError(f"read_from({self._source.name}): the timestamps were chosen already; "
                             f"branch from the stage that choice returned")
        self._stage = self._pipeline._add(StreamStage, StreamSourceTransform(self._source, policy), ())
        self._pipeline._resolved(self)
        return self._stage

    def __repr__(self) -> str:
        return f"StreamSourceStage({self._source.name!r})"


class StreamStage(GeneralStage):
    """A stage emitting an unbounded stream (or one that ends with a batch turned into
    a stream by `BatchStage.with_timestamps`)."""

    __slots__ = ()

    def grouping_key(self, key_fn: Callable[[Any], Hashable]) -> StreamStageWithKey:
        """Group the items by `key_fn(item)` for a keyed window, rolling_aggregate or map_stateful."""
        _check_callable("grouping_key", "key_fn", key_fn)
        return StreamStageWithKey(self, key_fn)

    def with_timestamps(self, timestamp_fn: Callable[[Any], int], allowed_lag_ms: int) -> StreamStage:
        """Give a stage without timestamps event time `timestamp_fn(item)` (see
        StreamSourceStage.with_timestamps; here watermarks are made per processor of
        an added vertex)."""
        if self._timestamped:
            raise ValueError("with_timestamps: the stage has timestamps already")
        return self._attach(TimestampTransform(timestamps_policy("with_timestamps", timestamp_fn,
                                                                 allowed_lag_ms)))

    def map_stateful(self, create_fn: Callable[[], Any], fn: Callable[[Any, Any], Any],
                     ttl_ms: int | None = None, on_evict_fn: Callable[[Any, int], Any] | None = None
                     ) -> StreamStage:
        """Emit `fn(state, item)` (None emits nothing); one state per processor, made by
        `create_fn()`. With `ttl_ms` (needs timestamps) the state is dropped once the
        watermark passes `ttl_ms` after the last item that touched it, and
        `on_evict_fn(state, watermark)` (if given) may emit a last item."""
        _check_ttl(self, ttl_ms)
        return self._attach(MapStatefulTransform(create_fn, fn, None, ttl_ms, on_evict_fn))

    def rolling_aggregate(self, op: AggregateOperation) -> StreamStage:
        """For each item, emit `op`'s result over all items so far (one processor in
        the cluster sees them all)."""
        return self._attach(RollingAggregateTransform(op))

    def window(self, definition: WindowDefinition) -> StageWithWindow:
        """Aggregate in windows of event time; the stage needs timestamps."""
        _check_window(self, definition)
        return StageWithWindow(self, definition)


def _check_ttl(stage: StreamStage, ttl_ms: object) -> None:
    if ttl_ms is not None and not stage._timestamped:
        raise ValueError("map_stateful: ttl_ms needs a stage with timestamps (with_timestamps, "
                         "with_ingestion_timestamps or with_native_timestamps)")


def _check_window(stage: StreamStage, definition: object) -> None:
    if not isinstance(definition, WindowDefinition):
        raise TypeError(f"window: expected a WindowDefinition, got {definition!r}")
    if not stage._timestamped:
        raise ValueError("window: the stage has no timestamps; read the source with with_timestamps, "
                         "with_ingestion_timestamps or with_native_timestamps")


class StreamStageWithKey:
    """A stream stage with a grouping key: windows, rolling_aggregate and map_stateful per key."""

    __slots__ = ("_stage", "_key_fn")

    def __init__(self, stage: StreamStage, key_fn: Callable[[Any], Hashable]) -> None:
        self._stage = stage
        self._key_fn = key_fn

    @property
    def key_fn(self) -> Callable[[Any], Hashable]:
        return self._key_fn

    def map_stateful(self, create_fn: Callable[[], Any], fn: Callable[[Any, Hashable, Any], Any],
                     ttl_ms: int | None = None,
                     on_evict_fn: Callable[[Any, Hashable, int], Any] | None = None) -> StreamStage:
        """Emit `fn(state, key, item)` (None emits nothing), one state per key, made by
        `create_fn()` on the key's first item. With `ttl_ms` (needs timestamps) a key's
        state is dropped once the watermark passes `ttl_ms` after its last item, and
        `on_evict_fn(state, key, watermark)` (if given) may emit a last item; an item
        older than `watermark - ttl_ms` is late and dropped."""
        _check_ttl(self._stage, ttl_ms)
        return self._stage._attach(MapStatefulTransform(create_fn, fn, self._key_fn, ttl_ms, on_evict_fn))

    def rolling_aggregate(self, op: AggregateOperation) -> StreamStage:
        """For each item, emit `(key, result)`: `op` over the key's items so far."""
        return self._stage._attach(RollingAggregateTransform(op, self._key_fn))

    def window(self, definition: WindowDefinition) -> StageWithKeyAndWindow:
        _check_window(self._stage, definition)
        return StageWithKeyAndWindow(self._stage, self._key_fn, definition)

    def __repr__(self) -> str:
        return f"StreamStageWithKey({self._stage!r}, key={fn_name(self._key_fn)})"


class StageWithWindow:
    """A stream stage with a window definition: `aggregate(op)`."""

    __slots__ = ("_stage", "_definition")

    def __init__(self, stage: StreamStage, definition: WindowDefinition) -> None:
        self._stage = stage
        self._definition = definition

    def aggregate(self, op: AggregateOperation) -> StreamStage:
        """Emit `WindowResult(start, end, None, result)` for each window, once the
        watermark passes its end (timestamp: end - 1)."""
        return self._stage._attach(WindowAggregateTransform(self._definition, op))


class StageWithKeyAndWindow:
    """A keyed stream stage with a window definition: `aggregate(op)` per key and window."""

    __slots__ = ("_stage", "_key_fn", "_definition")

    def __init__(self, stage: StreamStage, key_fn: Callable[[Any], Hashable], definition: WindowDefinition) -> None:
        self._stage = stage
        self._key_fn = key_fn
        self._definition = definition

    def aggregate(self, op: AggregateOperation) -> StreamStage:
        """Emit `WindowResult(start, end, key, result)` for each key and window with
        items, once the watermark passes the window's end (timestamp: end - 1)."""
        return self._stage._attach(WindowAggregateTransform(self._definition, op, self._key_fn))

