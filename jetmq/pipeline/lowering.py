"""Lowering: a pipeline's stages become a DAG's vertices and edges.

Two passes over the stages, in the order they were made (which is topological):

1. Fusion. A map / filter / flat_map / peek stage joins the vertex of the stage it
   reads from when that stage has no other consumer and its vertex can run steps
   (a chain, merge, rebalance or hash-join vertex); otherwise it starts a chain
   vertex of its own. So `map -> filter -> flat_map` is one vertex,
   "map-filter-flat_map", running one generated function per batch.
2. Building. Each transform adds its vertices and edges:

   ================  =========================================================
   source            one vertex (the source's name)
   chain             one vertex; local unicast edge from upstream
   merge             one vertex; a local unicast edge from each upstream
   rebalance         one vertex; distributed unicast (or partitioned) edge in;
                     no vertex when a sink is its only reader: the sink's
                     own edge in is the distributed one (as Jet's rebalance,
                     a property of the next stage's edge)
   aggregate         accumulate (local edge in) -> distributed partitioned by
                     key (or all-to-one) -> combine; a chain feeding only the
                     aggregate runs in the accumulate vertex ("flat_map-
                     accumulate-counting")
   distinct          distinct-local (local edge in) -> distributed partitioned
                     by key -> distinct
   map_stateful      one vertex; distributed partitioned by key (keyed) or
                     local unicast (not keyed) edge in
   sort              one vertex; distributed all-to-one edge in
   hash_join         hash-join-collect (distributed broadcast from the build
                     side, one per member) -> local broadcast, priority -1,
                     ordinal 1 -> hash-join (local unicast from the primary
                     side, ordinal 0)
   sink              one vertex (the sink's name); local unicast edge in
   stream source     one vertex (the source's name), timestamping its items
   with_timestamps   add-timestamps vertex; local unicast edge in
   window aggregate  sliding/tumbling: window-accumulate (local edge in) ->
                     distributed partitioned by key -> window-combine;
                     session: session-window-drop-late (local edge in:
                     drops events behind its own stream's watermark) ->
                     distributed partitioned by the grouping key (all-to-
                     one when not keyed) -> one session-window vertex;
                     a map/filter/peek chain feeding only the session
                     window runs in the drop-late vertex
   rolling_aggregate one vertex; distributed partitioned by key (or by the
                     constant None: one processor) edge in
   ================  =========================================================

Watermark throttling is chosen for the whole pipeline, as Jet's planner does: a
pipeline with a stage that acts on watermarks (a window, a map_stateful with a TTL)
gets WATERMARK_THROTTLE_MS; one without gets MAXIMUM_WATERMARK_GAP, since its
watermarks only show in the job's metrics, and each one costs every downstream
processor a call and every member a message.

Stages with timestamps carry `(ts, item)` events (jetmq.pipeline.events): their
processors are told so, partitioning keys are taken from the item, and a sink's
processor is wrapped to get bare items.

Vertex names are readable and unique in the DAG (a clash gets "-2", "-3", ...),
since a job's failure text names the vertex.
"""
from __future__ import annotations

import operator
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Callable

from jetmq.core.dag import DAG, Edge
from jetmq.core.processor import Processor
from jetmq.pipeline.events import WATERMARK_THROTTLE_MS, EventTimePolicy
from jetmq.pipeline.processors.aggregation import (
    AccumulateAllProcessor,
    AccumulateProcessor,
    CombineAllProcessor,
    CombineProcessor,
    DistinctProcessor,
)
from jetmq.pipeline.processors.event_time import InsertWatermarksProcessor
from jetmq.pipeline.processors.fused import FusedTransformProcessor, Step
from jetmq.pipeline.processors.join import PRIMARY_ORDINAL, TABLE_ORDINAL, HashJoinCollectProcessor, HashJoinProcessor
from jetmq.pipeline.processors.sinks import TimestampStrippingSink
from jetmq.pipeline.processors.stateful import SortProcessor
from jetmq.pipeline.processors.stream_stateful import RollingAggregateProcessor, StreamMapStatefulProcessor
from jetmq.pipeline.processors.windows import (
    DropLateEventsProcessor,
    FrameAccumulateProcessor,
    SessionWindowProcessor,
    WindowCombineProcessor,
)
from jetmq.pipeline.stages import Stage
from jetmq.pipeline.transforms import (
    AggregateTransform,
    ChainTransform,
    DistinctTransform,
    HashJoinTransform,
    MapStatefulTransform,
    MergeTransform,
    RebalanceTransform,
    RollingAggregateTransform,
    SinkTransform,
    SortTransform,
    SourceTransform,
    StreamSourceTransform,
    TimestampTransform,
    WindowAggregateTransform,
    op_name,
)

__all__ = ["BUILD_SIDE_PRIORITY", "MAXIMUM_WATERMARK_GAP_MS", "lower", "watermark_throttle_ms"]

MAXIMUM_WATERMARK_GAP_MS = 1000
"""Watermark throttling of a pipeline with no stage acting on watermarks (Jet's
MAXIMUM_WATERMARK_GAP): its watermarks still advance every second of event time."""

BUILD_SIDE_PRIORITY = -1
"""Priority of the hash join's table edge: lower than the primary edge's 0, so the
joiner consumes the whole table before its first primary item (as Jet's)."""

_KEY_OF_PAIR = operator.itemgetter(0)
"""The partitioning key of the (key, accumulator) pairs between accumulate and combine."""


def _whole_item(item: Any) -> Any:
    return item


def _none_key(_item: Any) -> None:
    return None


def _key_of_event(key_fn: Callable[[Any], Any], event: tuple[int, Any]) -> Any:
    return key_fn(event[1])


def _item_key(key_fn: Callable[[Any], Any], timestamped: bool) -> Callable[[Any], Any]:
    """The partitioning function for a user's key function on a stage's items."""
    return partial(_key_of_event, key_fn) if timestamped else key_fn


@dataclass
class _FusedVertex:
    """A vertex running steps: its head stage decides its inbound edges."""

    head: Stage
    steps: list[Step] = field(default_factory=list)
    name: str = ""
    absorbed: bool = False
    """Run by the accumulate step of the aggregation it feeds: no vertex of its own."""


class _DagBuilder:
    def __init__(self, throttle_ms: int) -> None:
        self.dag = DAG()
        self._out_ordinals: Counter[str] = Counter()
        self.throttle_ms = throttle_ms
        self.rebalancing: dict[int, RebalanceTransform] = {}
        """Rebalance stages lowered to no vertex (stage index -> transform): their sink's
        edge in distributes the items."""

    def policy(self, policy: EventTimePolicy) -> EventTimePolicy:
        """A source's event time policy with the pipeline's watermark throttling."""
        return replace(policy, throttle_ms=self.throttle_ms)

    def vertex(self, name: str, supplier: Callable[[], Processor], local_parallelism: int = 1) -> str:
        unique, n = name, 1
        while self.dag.has_vertex(unique):
            n += 1
            unique = f"{name}-{n}"
        self.dag.new_vertex(unique, supplier, local_parallelism)
        return unique

    def edge(self, source: str, dest: str, dest_ordinal: int = 0) -> Edge:
        """A new edge from the next free output of `source`; configure it, then `add` it."""
        ordinal = self._out_ordinals[source]
        self._out_ordinals[source] += 1
        return Edge.from_(source, ordinal).to(dest, dest_ordinal)

    def add(self, edge: Edge) -> None:
        self.dag.edge(edge)


def lower(stages: list[Stage]) -> DAG:
    """The DAG of a pipeline whose stages, in the order they were made, are `stages`."""
    fused, absorbed = _plan_fusion(stages)
    builder = _DagBuilder(watermark_throttle_ms(stages))
    out: dict[int, str] = {}  # stage index -> the vertex emitting its items
    for stage in stages:
        group = fused.get(stage._index)
        if group is not None:
            if not group.absorbed:  # an absorbed chain's items are read only by its aggregation
                if group.head is stage:
                    _lower_fused(builder, group, out)
                out[stage._index] = group.name
        else:
            chain = absorbed.get(stage._index)
            inputs = chain.head._upstreams if chain is not None else stage._upstreams
            vertex = _lower_stage(builder, stage, [out[up._index] for up in inputs], chain)
            if vertex is not None:
                out[stage._index] = vertex
    return builder.dag


def watermark_throttle_ms(stages: list[Stage]) -> int:
    """How far event time moves between two watermarks of a source processor."""
    for stage in stages:
        t = stage._transform
        if isinstance(t, WindowAggregateTransform) or (isinstance(t, MapStatefulTransform) and t.ttl_ms is not None):
            return WATERMARK_THROTTLE_MS
    return MAXIMUM_WATERMARK_GAP_MS


def _plan_fusion(stages: list[Stage]) -> tuple[dict[int, _FusedVertex], dict[int, _FusedVertex]]:
    """Which stages share a fused vertex (stage index -> its vertex), and which
    aggregate stages absorb their upstream chain (aggregate stage index -> the chain).

    An aggregation's accumulate step runs the chain before it when that chain is a
    plain one (read over a local edge) feeding only the aggregation: a word count's
    flat_map then yields its words straight into the counting loop, with no queue
    in between (measured ~10% less time per word than two vertices).
    """
    consumers = Counter(up._index for stage in stages for up in stage._upstreams)
    into_sink = {stage._upstreams[0]._index for stage in stages if isinstance(stage._transform, SinkTransform)}
    fused: dict[int, _FusedVertex] = {}
    absorbed: dict[int, _FusedVertex] = {}
    for stage in stages:
        t = stage._transform
        if isinstance(t, ChainTransform):
            up = stage._upstreams[0]._index
            group = fused.get(up)
            if group is None or consumers[up] != 1:
                group = _FusedVertex(stage)
            group.steps.append((t.kind, t.fn))
            fused[stage._index] = group
        elif isinstance(t, RebalanceTransform) and consumers[stage._index] == 1 and stage._index in into_sink:
            pass  # no vertex: the sink's edge in distributes (_lower_stage)
        elif isinstance(t, (MergeTransform, RebalanceTransform, HashJoinTransform)):
            fused[stage._index] = _FusedVertex(stage)
        elif isinstance(t, AggregateTransform) or _is_session(t):
            up = stage._upstreams[0]._index
            group = fused.get(up)
            if group is not None and consumers[up] == 1 and isinstance(group.head._transform, ChainTransform) \
                    and (isinstance(t, AggregateTransform) or all(kind != "flat_map" for kind, _ in group.steps)):
                group.absorbed = True
                absorbed[stage._index] = group
    return fused, absorbed


def _is_session(t: Any) -> bool:
    return isinstance(t, WindowAggregateTransform) and t.window.is_session


def _lower_fused(b: _DagBuilder, group: _FusedVertex, out: dict[int, str]) -> None:
    head = group.head
    t = head._transform
    steps = tuple(group.steps)
    kinds = [kind for kind, _ in steps]
    ups = [out[up._index] for up in head._upstreams]
    ts = head._timestamped
    if isinstance(t, ChainTransform):
        group.name = b.vertex("-".join(kinds), partial(FusedTransformProcessor, steps, ts))
        b.add(b.edge(ups[0], group.name))
    elif isinstance(t, MergeTransform):
        group.name = b.vertex("-".join(["merge", *kinds]), partial(FusedTransformProcessor, steps, ts))
        for ordinal, up in enumerate(ups):
            b.add(b.edge(up, group.name, ordinal))
    elif isinstance(t, RebalanceTransform):
        group.name = b.vertex("-".join(["rebalance", *kinds]), partial(FusedTransformProcessor, steps, ts))
        b.add(_rebalancing(b.edge(ups[0], group.name), t, ts))
    else:  # HashJoinTransform
        primary, build_side = ups
        collector = b.vertex("hash-join-collect", partial(HashJoinCollectProcessor, t.right_key_fn))
        b.add(b.edge(build_side, collector).distributed().broadcast())
        group.name = b.vertex("-".join(["hash-join", *kinds]),
                              partial(HashJoinProcessor, t.left_key_fn, t.map_fn, steps, ts))
        b.add(b.edge(primary, group.name, PRIMARY_ORDINAL))
        b.add(b.edge(collector, group.name, TABLE_ORDINAL).broadcast().with_priority(BUILD_SIDE_PRIORITY))


def _rebalancing(edge: Edge, t: RebalanceTransform, ts: bool) -> Edge:
    """`edge`, distributing the items as `rebalance` asks: round robin or by key."""
    edge = edge.distributed()
    return edge if t.key_fn is None else edge.partitioned(_item_key(t.key_fn, ts))


def _lower_stage(b: _DagBuilder, stage: Stage, ups: list[str], chain: _FusedVertex | None) -> str | None:
    """Add the vertices and edges of a stage that is not fused, reading from the
    vertices `ups`; `chain`, for an aggregate, is the chain its accumulate step
    runs (then `ups` is the chain's input)."""
    t = stage._transform
    ts = bool(stage._upstreams) and stage._upstreams[0]._timestamped  # whether the input has timestamps
    if isinstance(t, SourceTransform):
        return b.vertex(t.source.name, t.source.supplier, t.source.local_parallelism)
    if isinstance(t, StreamSourceTransform):
        return b.vertex(t.source.name, t.source.supplier(b.policy(t.policy)), t.source.local_parallelism)
    if isinstance(t, SinkTransform):
        supplier = partial(TimestampStrippingSink, t.sink.supplier) if ts and not t.sink.receives_timestamps \
            else t.sink.supplier
        sink = b.vertex(t.sink.name, supplier, t.sink.local_parallelism)
        rebalance = b.rebalancing.get(stage._upstreams[0]._index)
        b.add(b.edge(ups[0], sink) if rebalance is None else _rebalancing(b.edge(ups[0], sink), rebalance, ts))
        return None
    if isinstance(t, RebalanceTransform):  # into a sink only (_plan_fusion): the sink's edge distributes
        b.rebalancing[stage._index] = t
        return ups[0]
    if isinstance(t, TimestampTransform):
        vertex = b.vertex("add-timestamps", partial(InsertWatermarksProcessor, b.policy(t.policy)))
        b.add(b.edge(ups[0], vertex))
        return vertex
    if isinstance(t, WindowAggregateTransform):
        return _lower_window(b, t, ups[0], ts, () if chain is None else tuple(chain.steps))
    if isinstance(t, RollingAggregateTransform):
        vertex = b.vertex(f"rolling-{op_name(t.op)}", partial(RollingAggregateProcessor, t.op, t.key_fn, ts))
        key_fn = _none_key if t.key_fn is None else _item_key(t.key_fn, ts)
        b.add(b.edge(ups[0], vertex).distributed().partitioned(key_fn))
        return vertex
    if isinstance(t, AggregateTransform):
        name = op_name(t.op)
        pre_steps = () if chain is None else tuple(chain.steps)
        prefix = "".join(f"{kind}-" for kind, _ in pre_steps)
        if t.key_fn is None:
            accumulate = b.vertex(f"{prefix}accumulate-{name}", partial(AccumulateAllProcessor, t.op, pre_steps))
            combine = b.vertex(f"combine-{name}", partial(CombineAllProcessor, t.op))
            b.add(b.edge(ups[0], accumulate))
            b.add(b.edge(accumulate, combine).distributed().all_to_one())
        else:
            accumulate = b.vertex(f"{prefix}accumulate-{name}",
                                  partial(AccumulateProcessor, t.key_fn, t.op, pre_steps))
            combine = b.vertex(f"combine-{name}", partial(CombineProcessor, t.op))
            b.add(b.edge(ups[0], accumulate))
            b.add(b.edge(accumulate, combine).distributed().partitioned(_KEY_OF_PAIR))
        return combine
    if isinstance(t, DistinctTransform):
        key_fn = _whole_item if t.key_fn is None else t.key_fn
        local = b.vertex("distinct-local", partial(DistinctProcessor, key_fn))
        final = b.vertex("distinct", partial(DistinctProcessor, key_fn))
        b.add(b.edge(ups[0], local))
        b.add(b.edge(local, final).distributed().partitioned(key_fn))
        return final
    if isinstance(t, MapStatefulTransform):
        vertex = b.vertex("map-stateful", partial(StreamMapStatefulProcessor, t.create_fn, t.fn, t.key_fn, ts,
                                                  t.ttl_ms, t.on_evict_fn))
        edge = b.edge(ups[0], vertex)
        b.add(edge if t.key_fn is None else edge.distributed().partitioned(_item_key(t.key_fn, ts)))
        return vertex
    if isinstance(t, SortTransform):
        vertex = b.vertex("sort", partial(SortProcessor, t.key, t.reverse))
        b.add(b.edge(ups[0], vertex).distributed().all_to_one())
        return vertex
    raise TypeError(f"no lowering for transform {t!r}")


def _lower_window(b: _DagBuilder, t: WindowAggregateTransform, up: str, ts: bool,
                  pre_steps: tuple[Step, ...] = ()) -> str:
    """Sliding and tumbling windows, as Jet's two-stage SlidingWindowP: accumulate
    frames where the items are, then combine them per key behind a distributed
    partitioned edge. Session windows, as Jet's SessionWindowP, in one stage behind a
    distributed edge partitioned by the grouping key (all-to-one when not keyed): a
    first stage could not know how early a session still open upstream on another
    member starts, so a second one would split sessions across members. Late events are
    dropped before that edge, against their own stream's watermark, so that what is late
    does not depend on how fast other members' watermarks travel; the map / filter /
    peek chain feeding only a session window (`pre_steps`) runs in that drop-late
    vertex ("map-session-window-drop-late-counting"), saving a local edge and a
    tasklet per member (measured on NEXMark q4: see docs/benchmarks.md)."""
    name, window, keyed = op_name(t.op), t.window, t.key_fn is not None
    if window.is_session:
        prefix = "".join(f"{kind}-" for kind, _ in pre_steps)
        drop_late = b.vertex(f"{prefix}session-window-drop-late-{name}",
                             partial(DropLateEventsProcessor, pre_steps))
        b.add(b.edge(up, drop_late))
        vertex = b.vertex(f"session-window-{name}", partial(SessionWindowProcessor, window, t.op, t.key_fn))
        edge = b.edge(drop_late, vertex).distributed()
        b.add(edge.partitioned(_item_key(t.key_fn, ts)) if keyed else edge.all_to_one())
        return vertex
    accumulate = b.vertex(f"window-accumulate-{name}", partial(FrameAccumulateProcessor, window, t.op, t.key_fn))
    combine = b.vertex(f"window-combine-{name}", partial(WindowCombineProcessor, window, t.op, keyed))
    b.add(b.edge(up, accumulate))
    b.add(b.edge(accumulate, combine).distributed().partitioned(_KEY_OF_PAIR))
    return combine
