"""The transforms of a pipeline: frozen descriptions of what each stage does.

A stage holds one transform and its upstream stages; `jetmq.pipeline.lowering`
turns the transforms into vertices and edges. Each transform validates its
functions when it is made, so a mistake is reported at the line that made the
stage, naming the step and the function.
"""
from __future__ import annotations

import operator
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import partial
from typing import Any

from jetmq.pipeline import aggregate as _agg
from jetmq.pipeline.aggregate import AggregateOperation
from jetmq.pipeline.events import EventTimePolicy
from jetmq.pipeline.processors.fused import CHAIN_KINDS
from jetmq.pipeline.sinks import Sink
from jetmq.pipeline.sources import BatchSource
from jetmq.pipeline.stream_sources import StreamSource
from jetmq.pipeline.windows import WindowDefinition

__all__ = [
    "AggregateTransform",
    "ChainTransform",
    "DistinctTransform",
    "HashJoinTransform",
    "MapStatefulTransform",
    "MergeTransform",
    "RebalanceTransform",
    "RollingAggregateTransform",
    "SinkTransform",
    "SortTransform",
    "SourceTransform",
    "StreamSourceTransform",
    "TimestampTransform",
    "Transform",
    "WindowAggregateTransform",
    "fn_name",
    "op_name",
]


def fn_name(fn: object) -> str:
    """A short readable name of a user function: `str.upper`, `<lambda>`, `parse`."""
    if isinstance(fn, partial):
        return f"partial({fn_name(fn.func)})"
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__


def _check_callable(step: str, what: str, fn: object) -> None:
    if not callable(fn):
        raise TypeError(f"{step}: {what} must be callable, got {fn!r} of type {type(fn).__name__}")


class Transform:
    """Base of the transforms: `describe()` is how the pipeline's repr shows the stage."""

    def describe(self) -> str:
        raise NotImplementedError

    def emits_timestamps(self, inputs: tuple[bool, ...]) -> bool:
        """Whether the stage's items carry timestamps, given whether its inputs' do
        (by default as its first input)."""
        return bool(inputs) and inputs[0]


@dataclass(frozen=True)
class SourceTransform(Transform):
    source: BatchSource

    def __post_init__(self) -> None:
        if not isinstance(self.source, BatchSource):
            raise TypeError(f"read_from: expected a BatchSource (from Sources or SourceBuilder), "
                            f"got {self.source!r}")

    def describe(self) -> str:
        return f"read_from({self.source.name})"


@dataclass(frozen=True)
class StreamSourceTransform(Transform):
    source: StreamSource
    policy: EventTimePolicy

    def __post_init__(self) -> None:
        if self.policy.kind == "native" and not self.source.supports_native_timestamps:
            raise ValueError(f"with_native_timestamps: the source {self.source.name!r} has no native "
                             f"timestamps; use with_timestamps(fn, allowed_lag_ms) or with_ingestion_timestamps()")

    def describe(self) -> str:
        kind = self.policy.kind
        how = "" if kind == "none" else f", {kind} timestamps"
        return f"read_from({self.source.name}{how})"

    def emits_timestamps(self, inputs: tuple[bool, ...]) -> bool:
        return self.policy.has_timestamps


@dataclass(frozen=True)
class TimestampTransform(Transform):
    """with_timestamps on a stage without timestamps: an add-timestamps vertex."""

    policy: EventTimePolicy

    def describe(self) -> str:
        return f"with_timestamps({fn_name(self.policy.timestamp_fn)}, {self.policy.allowed_lag_ms})"

    def emits_timestamps(self, inputs: tuple[bool, ...]) -> bool:
        return True


@dataclass(frozen=True)
class WindowAggregateTransform(Transform):
    window: WindowDefinition
    op: AggregateOperation
    key_fn: Callable[[Any], Hashable] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.op, AggregateOperation):
            raise TypeError(f"aggregate: expected an AggregateOperation (see AggregateOperations), got {self.op!r}")

    def describe(self) -> str:
        by = "" if self.key_fn is None else f" by {fn_name(self.key_fn)}"
        return f"window({self.window.describe()}).aggregate({op_name(self.op)}){by}"

    def emits_timestamps(self, inputs: tuple[bool, ...]) -> bool:
        return True


@dataclass(frozen=True)
class RollingAggregateTransform(Transform):
    op: AggregateOperation
    key_fn: Callable[[Any], Hashable] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.op, AggregateOperation):
            raise TypeError(f"rolling_aggregate: expected an AggregateOperation, got {self.op!r}")

    def describe(self) -> str:
        by = "" if self.key_fn is None else f" by {fn_name(self.key_fn)}"
        return f"rolling_aggregate({op_name(self.op)}){by}"


@dataclass(frozen=True)
class ChainTransform(Transform):
    """map, filter, flat_map or peek: stateless, and fused with its neighbours."""

    kind: str
    fn: Callable[[Any], Any]

    def __post_init__(self) -> None:
        if self.kind not in CHAIN_KINDS:
            raise ValueError(f"unknown step kind {self.kind!r}")
        _check_callable(self.kind, "fn", self.fn)

    def describe(self) -> str:
        return f"{self.kind}({fn_name(self.fn)})"


@dataclass(frozen=True)
class MergeTransform(Transform):
    def describe(self) -> str:
        return "merge"


@dataclass(frozen=True)
class RebalanceTransform(Transform):
    key_fn: Callable[[Any], Hashable] | None = None

    def __post_init__(self) -> None:
        if self.key_fn is not None:
            _check_callable("rebalance", "key_fn", self.key_fn)

    def describe(self) -> str:
        return "rebalance" if self.key_fn is None else f"rebalance(by {fn_name(self.key_fn)})"


@dataclass(frozen=True)
class AggregateTransform(Transform):
    op: AggregateOperation
    key_fn: Callable[[Any], Hashable] | None = None

    def emits_timestamps(self, inputs: tuple[bool, ...]) -> bool:
        return False

    def __post_init__(self) -> None:
        if not isinstance(self.op, AggregateOperation):
            raise TypeError(f"aggregate: expected an AggregateOperation (see AggregateOperations), got {self.op!r}")
        if self.key_fn is not None:
            _check_callable("grouping_key", "key_fn", self.key_fn)

    def describe(self) -> str:
        by = "" if self.key_fn is None else f" by {fn_name(self.key_fn)}"
        return f"aggregate({op_name(self.op)}){by}"


@dataclass(frozen=True)
class DistinctTransform(Transform):
    key_fn: Callable[[Any], Hashable] | None = None

    def __post_init__(self) -> None:
        if self.key_fn is not None:
            _check_callable("grouping_key", "key_fn", self.key_fn)

    def describe(self) -> str:
        return "distinct" if self.key_fn is None else f"distinct(by {fn_name(self.key_fn)})"


@dataclass(frozen=True)
class SortTransform(Transform):
    key: Callable[[Any], Any] | None = None
    reverse: bool = False

    def __post_init__(self) -> None:
        if self.key is not None:
            _check_callable("sort", "key", self.key)

    def describe(self) -> str:
        args = [] if self.key is None else [f"key={fn_name(self.key)}"]
        return f"sort({', '.join(args + (['reverse=True'] if self.reverse else []))})"


@dataclass(frozen=True)
class HashJoinTransform(Transform):
    """Upstreams: (primary, build side)."""

    left_key_fn: Callable[[Any], Hashable]
    right_key_fn: Callable[[Any], Hashable]
    map_fn: Callable[[Any, Any], Any]

    def __post_init__(self) -> None:
        _check_callable("hash_join", "join_on_key_fn_left", self.left_key_fn)
        _check_callable("hash_join", "join_on_key_fn_right", self.right_key_fn)
        _check_callable("hash_join", "map_fn", self.map_fn)

    def describe(self) -> str:
        return (f"hash_join(on {fn_name(self.left_key_fn)} = {fn_name(self.right_key_fn)}, "
                f"{fn_name(self.map_fn)})")


@dataclass(frozen=True)
class MapStatefulTransform(Transform):
    create_fn: Callable[[], Any]
    fn: Callable[..., Any]
    key_fn: Callable[[Any], Hashable] | None = None
    ttl_ms: int | None = None
    on_evict_fn: Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        _check_callable("map_stateful", "create_fn", self.create_fn)
        _check_callable("map_stateful", "fn", self.fn)
        if self.key_fn is not None:
            _check_callable("grouping_key", "key_fn", self.key_fn)
        if self.ttl_ms is not None and (type(self.ttl_ms) is not int or self.ttl_ms < 1):
            raise ValueError(f"map_stateful: ttl_ms must be an int >= 1 or None, got {self.ttl_ms!r}")
        if self.on_evict_fn is not None:
            _check_callable("map_stateful", "on_evict_fn", self.on_evict_fn)

    def describe(self) -> str:
        by = "" if self.key_fn is None else f" by {fn_name(self.key_fn)}"
        return f"map_stateful({fn_name(self.fn)}){by}"


@dataclass(frozen=True)
class SinkTransform(Transform):
    sink: Sink

    def __post_init__(self) -> None:
        if not isinstance(self.sink, Sink):
            raise TypeError(f"write_to: expected a Sink (from Sinks or SinkBuilder), got {self.sink!r}")

    def describe(self) -> str:
        return f"write_to({self.sink.name})"


# ---- naming the built-in aggregate operations (for vertex names and reprs) ----------------

_OP_NAMES: dict[Callable[..., Any], str] = {
    _agg._count_one: "counting",
    _agg._add_value: "summing",
    _agg._count_and_add: "averaging",
    _agg._append: "to_list",
    _agg._add_to_set: "to_set",
    _agg._top_accumulate: "top_n",
    _agg._accumulate_all: "all_of",
    _agg._accumulate_mapped: "mapping",
    _agg._accumulate_if: "filtering",
    _agg._reduce_accumulate: "reducing",
}


def op_name(op: AggregateOperation) -> str:
    """`counting`, `summing`, `min_by`, `all_of`, ... for the built-in operations
    (recognised by their accumulate function), else `aggregate`."""
    accumulate = op.accumulate
    if isinstance(accumulate, partial):
        if accumulate.func is _agg._keep_best:
            return "min_by" if accumulate.args[1] is operator.lt else "max_by"
        if (accumulate.func is _agg._top_accumulate and isinstance(accumulate.args[1], partial)
                and accumulate.args[1].func is _agg._reversed_key):
            return "bottom_n"
        accumulate = accumulate.func
    try:
        return _OP_NAMES.get(accumulate, "aggregate")
    except TypeError:  # an unhashable callable
        return "aggregate"
