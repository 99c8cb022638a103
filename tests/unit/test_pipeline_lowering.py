"""Pipeline -> DAG lowering: the vertices and edges each transform becomes, fusion, names."""
import pickle

import cloudpickle
import pytest

from jetmq.core import RoutingPolicy
from jetmq.pipeline import Pipeline, Sinks, SourceBuilder, Sources, WindowDefinition
from jetmq.pipeline.aggregate import AggregateOperations as ops
from jetmq.pipeline.events import WATERMARK_THROTTLE_MS
from jetmq.pipeline.lowering import BUILD_SIDE_PRIORITY, MAXIMUM_WATERMARK_GAP_MS
from jetmq.pipeline.processors import AccumulateProcessor, FusedTransformProcessor
from jetmq.pipeline.transforms import op_name

pytestmark = pytest.mark.timeout(30)


def shape(dag):
    """(vertex names in topological order, {(source, dest): edge})."""
    return [v.name for v in dag.vertices()], {(e.source_name, e.dest_name): e for e in dag.edges()}


def test_adjacent_map_filter_flat_map_lower_to_one_vertex():
    # Given a chain of three stateless stages between a source and a sink
    p = Pipeline()
    (p.read_from(Sources.items([1, 2, 3]))
      .map(lambda x: x + 1).filter(lambda x: x % 2).flat_map(lambda x: [x, x])
      .write_to(Sinks.list("out")))
    # When lowered
    names, edges = shape(p.to_dag())
    # Then the chain is one vertex, reached and left by local unicast edges
    assert names == ["items-source", "map-filter-flat_map", "list-sink(out)"]
    for edge in edges.values():
        assert not edge.is_distributed and edge.routing is RoutingPolicy.UNICAST
    processor = p.to_dag().get_vertex("map-filter-flat_map").processor_supplier()
    assert isinstance(processor, FusedTransformProcessor)


def test_peek_fuses_with_its_neighbours():
    p = Pipeline()
    p.read_from(Sources.items([1])).map(str).peek().filter(bool).write_to(Sinks.noop())
    names, _ = shape(p.to_dag())
    assert names == ["items-source", "map-peek-filter", "noop-sink"]


def test_a_stage_feeding_two_stages_is_not_fused_with_either():
    # Given a map whose output feeds two branches
    p = Pipeline()
    mapped = p.read_from(Sources.items([1])).map(lambda x: x)
    mapped.filter(bool).write_to(Sinks.list("a"))
    mapped.map(str).write_to(Sinks.list("b"))
    names, edges = shape(p.to_dag())
    # Then each branch's step is a vertex of its own, fed from the map's outputs 0 and 1
    assert names == ["items-source", "map", "filter", "map-2", "list-sink(a)", "list-sink(b)"]
    assert edges[("map", "filter")].source_ordinal == 0
    assert edges[("map", "map-2")].source_ordinal == 1


def test_grouped_aggregate_lowers_to_local_accumulate_then_partitioned_combine():
    p = Pipeline()
    p.read_from(Sources.items(["a"])).grouping_key(lambda w: w).aggregate(ops.counting()).write_to(Sinks.map("m"))
    dag = p.to_dag()
    names, edges = shape(dag)
    assert names == ["items-source", "accumulate-counting", "combine-counting", "map-sink(m)"]
    into = edges[("items-source", "accumulate-counting")]
    assert not into.is_distributed and into.routing is RoutingPolicy.UNICAST
    across = edges[("accumulate-counting", "combine-counting")]
    assert across.is_distributed and across.routing is RoutingPolicy.PARTITIONED
    assert across.key_fn(("key", 3)) == "key"


def test_a_chain_feeding_only_an_aggregation_runs_in_the_accumulate_vertex():
    # Given the word count's shape
    p = Pipeline()
    (p.read_from(Sources.files("/tmp")).flat_map(str.split).map(str.lower)
      .grouping_key(lambda w: w).aggregate(ops.counting()).write_to(Sinks.map("counts")))
    dag = p.to_dag()
    names, edges = shape(dag)
    # Then the flat_map and map run in the accumulate step, read over a local edge
    assert names == ["files-source", "flat_map-map-accumulate-counting", "combine-counting", "map-sink(counts)"]
    into = edges[("files-source", "flat_map-map-accumulate-counting")]
    assert not into.is_distributed
    assert isinstance(dag.get_vertex("flat_map-map-accumulate-counting").processor_supplier(), AccumulateProcessor)


def test_a_chain_feeding_an_aggregation_and_more_keeps_its_vertex():
    p = Pipeline()
    words = p.read_from(Sources.items(["a"])).map(str.upper)
    words.aggregate(ops.counting()).write_to(Sinks.list("n"))
    words.write_to(Sinks.list("w"))
    names, edges = shape(p.to_dag())
    assert names == ["items-source", "map", "accumulate-counting", "list-sink(w)", "combine-counting", "list-sink(n)"]
    assert edges[("accumulate-counting", "combine-counting")].routing is RoutingPolicy.ALL_TO_ONE


def test_ungrouped_aggregate_combines_on_one_processor():
    p = Pipeline()
    p.read_from(Sources.items([1])).aggregate(ops.summing()).write_to(Sinks.list("s"))
    names, edges = shape(p.to_dag())
    assert names == ["items-source", "accumulate-summing", "combine-summing", "list-sink(s)"]
    across = edges[("accumulate-summing", "combine-summing")]
    assert across.is_distributed and across.routing is RoutingPolicy.ALL_TO_ONE


def test_distinct_lowers_to_local_then_partitioned_distinct():
    p = Pipeline()
    p.read_from(Sources.items([1])).distinct().write_to(Sinks.list("d"))
    names, edges = shape(p.to_dag())
    assert names == ["items-source", "distinct-local", "distinct", "list-sink(d)"]
    across = edges[("distinct-local", "distinct")]
    assert across.is_distributed and across.routing is RoutingPolicy.PARTITIONED


def test_sort_sends_everything_to_one_processor():
    p = Pipeline()
    p.read_from(Sources.items([1])).sort().write_to(Sinks.list("s"))
    _, edges = shape(p.to_dag())
    into = edges[("items-source", "sort")]
    assert into.is_distributed and into.routing is RoutingPolicy.ALL_TO_ONE


def test_rebalance_is_a_distributed_edge_and_later_steps_fuse_after_it():
    p = Pipeline()
    p.read_from(Sources.items([1])).rebalance().map(str).write_to(Sinks.noop())
    p.read_from(Sources.items([2])).rebalance(lambda x: x).write_to(Sinks.noop())
    names, edges = shape(p.to_dag())
    assert "rebalance-map" in names
    unicast = edges[("items-source", "rebalance-map")]
    assert unicast.is_distributed and unicast.routing is RoutingPolicy.UNICAST
    # a rebalance read only by a sink is no vertex: the sink's own edge in distributes
    assert not any(name.startswith("rebalance") and name != "rebalance-map" for name in names)
    keyed = edges[("items-source-2", "noop-sink-2")]
    assert keyed.is_distributed and keyed.routing is RoutingPolicy.PARTITIONED
    assert keyed.key_fn(7) == 7


def test_a_rebalance_read_by_a_sink_and_another_stage_keeps_its_vertex():
    p = Pipeline()
    rebalanced = p.read_from(Sources.items([1])).rebalance(lambda x: x)
    rebalanced.write_to(Sinks.noop())
    rebalanced.map(str).write_to(Sinks.list("strings"))
    names, edges = shape(p.to_dag())
    assert "rebalance" in names and "map" in names
    assert edges[("items-source", "rebalance")].is_distributed
    assert not edges[("rebalance", "noop-sink")].is_distributed
    assert not edges[("rebalance", "map")].is_distributed


def test_a_keyed_rebalance_into_a_sink_partitions_timestamped_items_by_their_item():
    p = Pipeline()
    (p.read_from(Sources.item_stream(10)).with_native_timestamps(0)
      .map(lambda event: event.sequence).rebalance(lambda seq: seq % 3).write_to(Sinks.list("seqs")))
    names, edges = shape(p.to_dag())
    assert names == ["item-stream", "map", "list-sink(seqs)"]
    into_sink = edges[("map", "list-sink(seqs)")]
    assert into_sink.is_distributed and into_sink.routing is RoutingPolicy.PARTITIONED
    assert into_sink.key_fn((1_000, 5)) == 2  # the key of the item, not of its timestamp


def test_merge_takes_each_upstream_on_its_own_ordinal():
    p = Pipeline()
    a = p.read_from(Sources.items([1]))
    b = p.read_from(Sources.items([2]))
    a.merge(b).map(str).write_to(Sinks.noop())
    names, edges = shape(p.to_dag())
    assert "merge-map" in names
    assert edges[("items-source", "merge-map")].dest_ordinal == 0
    assert edges[("items-source-2", "merge-map")].dest_ordinal == 1


def test_hash_join_collects_the_build_side_on_every_member_and_reads_it_first():
    p = Pipeline()
    left = p.read_from(Sources.items([1]))
    right = p.read_from(Sources.items([(1, "one")]))
    left.hash_join(right, lambda x: x, lambda r: r[0], lambda x, r: (x, r)).map(str).write_to(Sinks.noop())
    names, edges = shape(p.to_dag())
    assert {"hash-join-collect", "hash-join-map"} <= set(names)
    build = edges[("items-source-2", "hash-join-collect")]
    assert build.is_distributed and build.routing is RoutingPolicy.BROADCAST
    table = edges[("hash-join-collect", "hash-join-map")]
    assert not table.is_distributed and table.routing is RoutingPolicy.BROADCAST
    assert table.dest_ordinal == 1 and table.priority == BUILD_SIDE_PRIORITY
    primary = edges[("items-source", "hash-join-map")]
    assert primary.dest_ordinal == 0 and primary.priority == 0 and not primary.is_distributed
    assert BUILD_SIDE_PRIORITY < primary.priority  # lower is consumed first


def test_keyed_map_stateful_is_partitioned_and_ungrouped_is_local():
    p = Pipeline()
    s = p.read_from(Sources.items([1]))
    s.grouping_key(lambda x: x).map_stateful(list, lambda st, k, x: x).write_to(Sinks.noop())
    s.map_stateful(list, lambda st, x: x).write_to(Sinks.noop())
    _, edges = shape(p.to_dag())
    assert edges[("items-source", "map-stateful")].routing is RoutingPolicy.PARTITIONED
    assert not edges[("items-source", "map-stateful-2")].is_distributed


def timestamped_pairs(p):
    return p.read_from(Sources.items([("k", 1)])).with_timestamps(lambda e: e[1], 0)


def test_a_keyed_session_window_is_one_stage_behind_an_edge_partitioned_by_the_grouping_key():
    # Given a session window keyed by the first field of the items
    p = Pipeline()
    (timestamped_pairs(p).grouping_key(lambda e: e[0])
     .window(WindowDefinition.session(10)).aggregate(ops.counting()).write_to(Sinks.noop()))
    names, edges = shape(p.to_dag())
    # Then the items go, past a local stage that drops the late ones, to one session-window
    # vertex, by key, on any member: a first stage per member could not know how early
    # another member's session starts
    assert names == ["items-source", "add-timestamps", "session-window-drop-late-counting",
                     "session-window-counting", "noop-sink"]
    local = edges[("add-timestamps", "session-window-drop-late-counting")]
    assert not local.is_distributed
    into = edges[("session-window-drop-late-counting", "session-window-counting")]
    assert into.is_distributed and into.routing is RoutingPolicy.PARTITIONED
    assert into.key_fn((5, ("k", 1))) == "k"  # the key of the (ts, item) event's item


def test_an_unkeyed_session_window_is_one_stage_behind_an_all_to_one_edge():
    p = Pipeline()
    timestamped_pairs(p).window(WindowDefinition.session(10)).aggregate(ops.counting()).write_to(Sinks.noop())
    names, edges = shape(p.to_dag())
    assert names == ["items-source", "add-timestamps", "session-window-drop-late-counting",
                     "session-window-counting", "noop-sink"]
    into = edges[("session-window-drop-late-counting", "session-window-counting")]
    assert into.is_distributed and into.routing is RoutingPolicy.ALL_TO_ONE


@pytest.mark.parametrize("window", [WindowDefinition.tumbling(10), WindowDefinition.sliding(20, 10)],
                         ids=["tumbling", "sliding"])
def test_sliding_and_tumbling_windows_accumulate_frames_locally_then_combine_by_key(window):
    p = Pipeline()
    (timestamped_pairs(p).grouping_key(lambda e: e[0])
     .window(window).aggregate(ops.counting()).write_to(Sinks.noop()))
    names, edges = shape(p.to_dag())
    assert names == ["items-source", "add-timestamps", "window-accumulate-counting", "window-combine-counting",
                     "noop-sink"]
    assert not edges[("add-timestamps", "window-accumulate-counting")].is_distributed
    across = edges[("window-accumulate-counting", "window-combine-counting")]
    assert across.is_distributed and across.routing is RoutingPolicy.PARTITIONED
    assert across.key_fn(("k", 10, 3)) == "k"


def test_vertex_names_are_unique_and_readable():
    p = Pipeline()
    s = p.read_from(Sources.items([1]))
    for _ in range(3):
        s.map(str).write_to(Sinks.list("x"))
    names, _ = shape(p.to_dag())
    assert len(names) == len(set(names))
    assert {"map", "map-2", "map-3", "list-sink(x)", "list-sink(x)-2", "list-sink(x)-3"} <= set(names)


def test_source_and_sink_builders_name_their_vertices_and_set_parallelism():
    source = SourceBuilder.batch("numbers", lambda ctx: None).fill_buffer_fn(lambda s, b: b.close()).build()
    wide = (SourceBuilder.batch("wide", lambda ctx: None).fill_buffer_fn(lambda s, b: b.close())
            .distributed(2).build())
    p = Pipeline()
    p.read_from(source).merge(p.read_from(wide)).write_to(Sinks.logger())
    dag = p.to_dag()
    assert dag.get_vertex("numbers").local_parallelism == 1
    assert dag.get_vertex("wide").local_parallelism == 2
    assert dag.has_vertex("logger-sink")


def test_to_dag_gives_a_new_valid_picklable_dag_each_time():
    p = Pipeline()
    p.read_from(Sources.items(range(3))).map(lambda x: x * 2).write_to(Sinks.list("out"))
    first, second = p.to_dag(), p.to_dag()
    assert first is not second
    first.validate()
    restored = pickle.loads(cloudpickle.dumps(first))
    assert [v.name for v in restored.vertices()] == [v.name for v in first.vertices()]


def test_pipeline_repr_lists_stages_and_their_inputs():
    p = Pipeline()
    words = p.read_from(Sources.items(["a b"])).flat_map(str.split)
    words.grouping_key(str.upper).aggregate(ops.counting()).write_to(Sinks.map("counts"))
    text = repr(p)
    assert "[0] read_from(items-source)" in text
    assert "[1] flat_map(str.split) <- [0]" in text
    assert "[2] aggregate(counting) by str.upper <- [1]" in text
    assert "[3] write_to(map-sink(counts)) <- [2]" in text
    assert repr(Pipeline()) == "Pipeline(empty)"


def test_empty_pipeline_cannot_be_lowered():
    with pytest.raises(ValueError, match="empty"):
        Pipeline().to_dag()


@pytest.mark.parametrize("make, message", [
    (lambda s: s.map(3), "map: fn must be callable"),
    (lambda s: s.filter(None), "filter: fn must be callable"),
    (lambda s: s.grouping_key("word"), "grouping_key: key_fn must be callable"),
    (lambda s: s.aggregate(len), "expected an AggregateOperation"),
    (lambda s: s.write_to("counts"), "expected a Sink"),
    (lambda s: s.merge([1]), "merge: expected a BatchStage"),
    (lambda s: s.hash_join(s, 1, len, len), "join_on_key_fn_left must be callable"),
])
def test_bad_arguments_are_reported_where_the_stage_is_made(make, message):
    stage = Pipeline().read_from(Sources.items([1]))
    with pytest.raises((TypeError, ValueError), match=message):
        make(stage)


def test_stages_of_two_pipelines_cannot_be_joined():
    a = Pipeline().read_from(Sources.items([1]))
    b = Pipeline().read_from(Sources.items([2]))
    with pytest.raises(ValueError, match="another pipeline"):
        a.merge(b)


def test_builtin_aggregate_operations_have_names():
    named = {
        "counting": ops.counting(), "summing": ops.summing(), "averaging": ops.averaging(),
        "min_by": ops.min_by(), "max_by": ops.max_by(), "to_list": ops.to_list(), "to_set": ops.to_set(),
        "top_n": ops.top_n(2), "bottom_n": ops.bottom_n(2), "all_of": ops.all_of(ops.counting()),
    }
    assert {name: op_name(op) for name, op in named.items()} == {name: name for name in named}


def _throttles(p: Pipeline) -> dict[str, int]:
    """The watermark throttling of each timestamping vertex of the lowered pipeline."""
    dag = p.to_dag()
    policies = {v.name: getattr(v.processor_supplier(), "_policy", None) for v in dag.vertices()}
    return {name: policy.throttle_ms for name, policy in policies.items() if policy is not None}


def test_watermarks_of_a_pipeline_that_never_acts_on_them_come_once_a_second_of_event_time():
    # Given streams whose watermarks no stage acts on (they show only in the metrics)
    p = Pipeline()
    p.read_from(Sources.item_stream(10)).with_native_timestamps(0).map(str).write_to(Sinks.noop())
    stamped = p.read_from(Sources.items([1, 2])).with_timestamps(lambda x: x, 0)
    stamped.rolling_aggregate(ops.counting()).write_to(Sinks.list("counts"))
    # Then each timestamping vertex emits at most one a second (Jet's maximum gap)
    assert _throttles(p) == {"item-stream": MAXIMUM_WATERMARK_GAP_MS, "add-timestamps": MAXIMUM_WATERMARK_GAP_MS}


@pytest.mark.parametrize("stage", ["tumbling", "session", "map_stateful with a ttl"])
def test_watermarks_of_a_pipeline_with_a_stage_acting_on_them_keep_the_fine_throttle(stage):
    p = Pipeline()
    events = p.read_from(Sources.item_stream(10)).with_native_timestamps(0)
    events.map(str).write_to(Sinks.noop())  # a branch without windows: the pipeline decides, not the branch
    keyed = events.grouping_key(lambda e: e.sequence % 2)
    if stage == "tumbling":
        keyed.window(WindowDefinition.tumbling(100)).aggregate(ops.counting()).write_to(Sinks.noop())
    elif stage == "session":
        keyed.window(WindowDefinition.session(100)).aggregate(ops.counting()).write_to(Sinks.noop())
    else:
        keyed.map_stateful(list, lambda state, key, e: None, ttl_ms=1_000).write_to(Sinks.noop())
    assert _throttles(p) == {"item-stream": WATERMARK_THROTTLE_MS}
