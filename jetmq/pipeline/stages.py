"""Stages of a pipeline: GeneralStage (what every stage can do), BatchStage,
BatchStageWithKey and SinkStage; the streaming ones are in stream_stages.

A stage is an immutable handle on one transform of its pipeline; every method
attaches a new stage downstream and returns it, so one stage may feed several
(a branch), each of which sees all its items.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Any

from jetmq.pipeline.aggregate import AggregateOperation
from jetmq.pipeline.sinks import Sink
from jetmq.pipeline.transforms import (
    AggregateTransform,
    ChainTransform,
    DistinctTransform,
    HashJoinTransform,
    MapStatefulTransform,
    MergeTransform,
    RebalanceTransform,
    SinkTransform,
    SortTransform,
    TimestampTransform,
    Transform,
    _check_callable,
    fn_name,
)

if TYPE_CHECKING:
    from jetmq.pipeline.pipeline import Pipeline
    from jetmq.pipeline.stream_stages import StreamStage

__all__ = ["BatchStage", "BatchStageWithKey", "GeneralStage", "SinkStage", "Stage"]


def _pair(left: Any, right: Any) -> tuple[Any, Any]:
    return (left, right)


class Stage:
    """A node of the pipeline: its transform and the stages it reads from."""

    __slots__ = ("_pipeline", "_transform", "_upstreams", "_index", "_timestamped")

    def __init__(self, pipeline: Pipeline, transform: Transform, upstreams: tuple[Stage, ...], index: int) -> None:
        self._pipeline = pipeline
        self._transform = transform
        self._upstreams = upstreams
        self._index = index
        self._timestamped = transform.emits_timestamps(tuple(up._timestamped for up in upstreams))

    @property
    def has_timestamps(self) -> bool:
        """Whether the stage's items carry event timestamps (so it can be windowed)."""
        return self._timestamped

    @property
    def pipeline(self) -> Pipeline:
        return self._pipeline

    def __repr__(self) -> str:
        return f"{type(self).__name__}([{self._index}] {self._transform.describe()})"


class GeneralStage(Stage):
    """What batch and stream stages share: stateless steps, routing, map_stateful,
    hash_join and write_to. Each returns a new stage of the same kind."""

    __slots__ = ()

    # ---- stateless steps (fused into one vertex when adjacent) ----

    def map(self, fn: Callable[[Any], Any]) -> BatchStage:
        """Emit `fn(item)` for each item; a None result emits nothing (as Jet)."""
        return self._attach(ChainTransform("map", fn))

    def filter(self, fn: Callable[[Any], object]) -> BatchStage:
        """Emit the items for which `fn(item)` is true."""
        return self._attach(ChainTransform("filter", fn))

    def flat_map(self, fn: Callable[[Any], Iterable[Any] | None]) -> BatchStage:
        """Emit every element of the iterable `fn(item)` (None counts as empty)."""
        return self._attach(ChainTransform("flat_map", fn))

    def peek(self, fn: Callable[[Any], str] = str) -> BatchStage:
        """Log `fn(item)` at INFO for each item, through the processor's logger (on
        the member where the item is), and pass the item on unchanged."""
        return self._attach(ChainTransform("peek", fn))

    # ---- routing ----

    def merge(self, other: GeneralStage) -> GeneralStage:
        """The items of this stage and of `other` (a stage of the same kind), interleaved."""
        self._check_other("merge", other, type(self))
        if other._timestamped != self._timestamped:
            raise ValueError("merge: both stages must have timestamps, or neither")
        return self._attach(MergeTransform(), (self, other))

    def rebalance(self, key_fn: Callable[[Any], Hashable] | None = None) -> BatchStage:
        """Spread the items over all members: round robin, or by `key_fn(item)` (equal
        keys to one processor). The next stateless steps run after the rebalance."""
        return self._attach(RebalanceTransform(key_fn))

    # ---- stateful ----

    def map_stateful(self, create_fn: Callable[[], Any], fn: Callable[[Any, Any], Any]) -> GeneralStage:
        """Emit `fn(state, item)` (None emits nothing); `create_fn()` makes the state,
        one per processor: each member's processor sees its share of the items. The
        states are saved in snapshots (by processor index)."""
        return self._attach(MapStatefulTransform(create_fn, fn))

    def hash_join(self, other: BatchStage, join_on_key_fn_left: Callable[[Any], Hashable],
                  join_on_key_fn_right: Callable[[Any], Hashable],
                  map_fn: Callable[[Any, Any], Any] = _pair) -> BatchStage:
        """Join each item of this (primary) stage with the items of `other` (the build
        side) of equal key: `join_on_key_fn_left(item) == join_on_key_fn_right(other_item)`.

        Jet's hashJoin with one joined stage, a left outer join: emits
        `map_fn(item, match)` for each matching item of `other`, and `map_fn(item,
        None)` when none matches; a None result emits nothing (return None for a
        None match to get an inner join). `map_fn` defaults to making a (item,
        match) tuple. The build side is read whole (into memory on every member)
        before any primary item is joined.

        Do not derive both sides from one stage with a large input (such as
        `s.hash_join(s.map(...), ...)`): the primary side waits for the build side to
        finish, and the shared upstream stalls once the primary side's queues are
        full (Jet's deadlock warning about edge priorities).
        """
        self._check_other("hash_join", other, BatchStage)
        return self._attach(HashJoinTransform(join_on_key_fn_left, join_on_key_fn_right, map_fn), (self, other))

    # ---- the end ----

    def write_to(self, sink: Sink) -> SinkStage:
        """Send every item to `sink` (from Sinks or SinkBuilder)."""
        transform = SinkTransform(sink)
        return self._pipeline._add(SinkStage, transform, (self,))

    def _attach(self, transform: Transform, upstreams: tuple[Stage, ...] | None = None,
                cls: type | None = None) -> Any:
        return self._pipeline._add(cls or type(self), transform, upstreams or (self,))

    def _check_other(self, step: str, other: object, kind: type) -> None:
        if not isinstance(other, kind):
            raise TypeError(f"{step}: expected a {kind.__name__}, got {other!r}")
        if other._pipeline is not self._pipeline:
            raise ValueError(f"{step}: {other!r} belongs to another pipeline")


class BatchStage(GeneralStage):
    """A stage emitting a finite stream of items."""

    __slots__ = ()

    def grouping_key(self, key_fn: Callable[[Any], Hashable]) -> BatchStageWithKey:
        """Group the items by `key_fn(item)` for a keyed aggregate, distinct or map_stateful."""
        _check_callable("grouping_key", "key_fn", key_fn)
        return BatchStageWithKey(self, key_fn)

    def aggregate(self, op: AggregateOperation) -> BatchStage:
        """Emit one item: `op`'s result over all items (for no items, the result of an
        empty accumulator: 0 for counting, None for min_by, ...)."""
        return self._attach(AggregateTransform(op))

    def distinct(self) -> BatchStage:
        """Emit each distinct item once (items must be hashable)."""
        return self._attach(DistinctTransform())

    def sort(self, key: Callable[[Any], Any] | None = None, reverse: bool = False) -> BatchStage:
        """All items, sorted as `sorted(items, key=key, reverse=reverse)`, emitted in
        order by one processor of the cluster (so the stage after it runs there too)."""
        return self._attach(SortTransform(key, bool(reverse)))

    def with_timestamps(self, timestamp_fn: Callable[[Any], int], allowed_lag_ms: int) -> StreamStage:
        """This batch as a stream with event time `timestamp_fn(item)` (ms), which ends
        with the batch: so historic data can be windowed. Watermarks trail the
        greatest timestamp seen by `allowed_lag_ms` (per processor; see
        jetmq.pipeline.events); an item further behind may be late and dropped by a
        window. At the end of the batch every window still open is emitted."""
        from jetmq.pipeline.stream_stages import StreamStage, timestamps_policy
        policy = timestamps_policy("with_timestamps", timestamp_fn, allowed_lag_ms)
        return self._attach(TimestampTransform(policy), cls=StreamStage)


class BatchStageWithKey:
    """A batch stage with a grouping key: the keyed aggregate, distinct and map_stateful."""

    __slots__ = ("_stage", "_key_fn")

    def __init__(self, stage: BatchStage, key_fn: Callable[[Any], Hashable]) -> None:
        self._stage = stage
        self._key_fn = key_fn

    @property
    def key_fn(self) -> Callable[[Any], Hashable]:
        return self._key_fn

    def aggregate(self, op: AggregateOperation) -> BatchStage:
        """Emit `(key, result)` for each key (Jet's Map.Entry as a tuple): `op`'s result
        over the items of that key. Runs in two stages: a local accumulate on each
        member, then the accumulators combined per key across the cluster."""
        return self._stage._attach(AggregateTransform(op, self._key_fn))

    def distinct(self) -> BatchStage:
        """Emit one item per key (the first one a processor sees: which one is not specified)."""
        return self._stage._attach(DistinctTransform(self._key_fn))

    def map_stateful(self, create_fn: Callable[[], Any], fn: Callable[[Any, Hashable, Any], Any]) -> BatchStage:
        """Emit `fn(state, key, item)` (None emits nothing), with one state per key,
        made by `create_fn()` on the key's first item; a key's items are all seen
        by one processor, in the order they arrive there. States are saved in
        snapshots by key."""
        return self._stage._attach(MapStatefulTransform(create_fn, fn, self._key_fn))

    def __repr__(self) -> str:
        return f"BatchStageWithKey({self._stage!r}, key={fn_name(self._key_fn)})"


class SinkStage(Stage):
    """The end of a branch: a stage writing to a sink."""

    __slots__ = ()
