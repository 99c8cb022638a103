"""The member's execution engine run in-process, on one member: tasklets, queues, routing."""
from collections import Counter

import pytest

from jetmq.core import (DAG, DONE_ITEM, CollectSinkProcessor, Edge, FlatMapProcessor, ItemsSourceProcessor,
                        MapProcessor, Processor, Watermark)
from jetmq.core.partition import PARTITION_COUNT, owner_table, partition_of
from jetmq.member.engine.execution import Execution, ExecutionFailed, Plan
from jetmq.member.engine.queues import BatchQueue, Event, InputStream
from jetmq.member.engine.routing import OutboundEdge, Routing

pytestmark = pytest.mark.timeout(30)

MAX_STEPS = 1_000_000


def run_local(dag: DAG) -> int:
    """Run ``dag`` on one in-process member to the end; the number of loop steps."""
    execution = Execution(Plan(1, 1, 0, 1, tuple(owner_table([0]))), dag)
    execution.init()
    steps = 0
    while not execution.is_done:
        execution.step()
        steps += 1
        assert steps < MAX_STEPS, f"the execution did not finish: {execution.tasklets}"
    execution.close()
    return steps


class TaggingSink(Processor):
    """Records (local index, item) so tests see which processor got what."""

    def __init__(self, seen: list):
        self.seen = seen

    def process(self, ordinal, inbox):
        index = self.context.local_index
        self.seen.extend((index, ordinal, item) for item in inbox.take())


def test_items_flow_through_a_chain_with_nothing_lost_or_duplicated():
    out = []
    dag = DAG()
    source = dag.new_vertex("source", lambda: ItemsSourceProcessor(range(50_000)))
    double = dag.new_vertex("double", lambda: MapProcessor(lambda x: 2 * x), local_parallelism=3)
    sink = dag.new_vertex("sink", lambda: CollectSinkProcessor(out))
    dag.edge(Edge.between(source, double)).edge(Edge.between(double, sink))
    run_local(dag)
    assert sorted(out) == [2 * x for x in range(50_000)]


def test_partitioned_edge_sends_equal_keys_to_one_processor():
    seen = []
    dag = DAG()
    source = dag.new_vertex("source", lambda: ItemsSourceProcessor([f"k{i % 97}" for i in range(20_000)]))
    sink = dag.new_vertex("sink", lambda: TaggingSink(seen), local_parallelism=4)
    dag.edge(Edge.between(source, sink).partitioned(lambda s: s))
    run_local(dag)
    owners: dict[str, set] = {}
    for index, _, key in seen:
        owners.setdefault(key, set()).add(index)
    assert all(len(indexes) == 1 for indexes in owners.values())
    assert len({next(iter(i)) for i in owners.values()}) == 4, "keys should spread over all processors"
    assert Counter(key for _, _, key in seen) == Counter(f"k{i % 97}" for i in range(20_000))


def test_broadcast_edge_gives_every_processor_every_item():
    seen = []
    dag = DAG()
    source = dag.new_vertex("source", lambda: ItemsSourceProcessor(range(1000)))
    sink = dag.new_vertex("sink", lambda: TaggingSink(seen), local_parallelism=3)
    dag.edge(Edge.between(source, sink).broadcast())
    run_local(dag)
    for index in range(3):
        assert sorted(item for i, _, item in seen if i == index) == list(range(1000))


def test_all_to_one_edge_gives_one_processor_everything():
    seen = []
    dag = DAG()
    source = dag.new_vertex("source", lambda: ItemsSourceProcessor(range(1000)), local_parallelism=2)
    sink = dag.new_vertex("sink", lambda: TaggingSink(seen), local_parallelism=3)
    dag.edge(Edge.between(source, sink).all_to_one())
    run_local(dag)
    assert len({index for index, _, _ in seen}) == 1
    assert sorted(item for _, _, item in seen) == list(range(1000))


def test_higher_priority_edge_is_consumed_completely_first():
    seen = []
    dag = DAG()
    late = dag.new_vertex("late", lambda: ItemsSourceProcessor(["late"] * 5000))
    early = dag.new_vertex("early", lambda: ItemsSourceProcessor(["early"] * 5000))
    sink = dag.new_vertex("sink", lambda: TaggingSink(seen))
    dag.edge(Edge.from_(late).to(sink, 0).with_priority(1)).edge(Edge.from_(early).to(sink, 1).with_priority(0))
    run_local(dag)
    items = [item for _, _, item in seen]
    assert items == ["early"] * 5000 + ["late"] * 5000


def test_small_queues_and_a_fan_out_flat_map_lose_and_duplicate_nothing():
    out = []
    dag = DAG()
    source = dag.new_vertex("source", lambda: ItemsSourceProcessor(range(3000)))
    fan = dag.new_vertex("fan", lambda: FlatMapProcessor(lambda x: [(x, i) for i in range(7)]), local_parallelism=2)
    sink = dag.new_vertex("sink", lambda: CollectSinkProcessor(out))
    dag.edge(Edge.between(source, fan).with_queue_size(3)).edge(Edge.between(fan, sink).with_queue_size(5))
    run_local(dag)
    assert Counter(out) == Counter((x, i) for x in range(3000) for i in range(7))


class WatermarkSource(Processor):
    """Emits its items, each followed by a watermark of the same value."""

    def __init__(self, values):
        self.values = list(values)

    def complete(self):
        while self.values:
            value = self.values[0]
            if not self.outbox.offer(value):
                return False
            while not self.outbox.offer(Watermark(value)):
                return False
            self.values.pop(0)
        return True


def test_watermarks_are_coalesced_as_the_minimum_over_inputs():
    watermarks = []
    out = []

    class Sink(CollectSinkProcessor):
        def try_process_watermark(self, watermark):
            watermarks.append(watermark.timestamp)
            return True

    dag = DAG()
    fast = dag.new_vertex("fast", lambda: WatermarkSource([10, 20, 30, 40]))
    slow = dag.new_vertex("slow", lambda: WatermarkSource([5, 25]))
    sink = dag.new_vertex("sink", lambda: Sink(out))
    dag.edge(Edge.from_(fast).to(sink, 0)).edge(Edge.from_(slow).to(sink, 1))
    run_local(dag)
    assert watermarks == sorted(watermarks), "watermarks must only advance"
    assert set(watermarks) <= {5, 10, 20, 25, 30, 40}
    assert 5 in watermarks and max(watermarks) == 40
    assert sorted(out) == [5, 10, 20, 25, 30, 40]


def test_a_raising_processor_fails_the_execution_with_the_vertex_named():
    dag = DAG()
    source = dag.new_vertex("source", lambda: ItemsSourceProcessor(range(10)))
    bad = dag.new_vertex("bad-map", lambda: MapProcessor(lambda x: 1 / (x - 7)))
    sink = dag.new_vertex("sink", lambda: CollectSinkProcessor([]))
    dag.edge(Edge.between(source, bad)).edge(Edge.between(bad, sink))
    with pytest.raises(ExecutionFailed, match=r"ProcessorTasklet\{bad-map#0\}: ZeroDivisionError"):
        run_local(dag)


def test_a_raising_supplier_fails_the_build_with_the_vertex_named():
    def supplier():
        raise RuntimeError("no processor today")

    dag = DAG()
    source = dag.new_vertex("source", supplier)
    sink = dag.new_vertex("sink", lambda: CollectSinkProcessor([]))
    dag.edge(Edge.between(source, sink))
    with pytest.raises(ExecutionFailed, match="vertex 'source'.*RuntimeError: no processor today"):
        Execution(Plan(1, 1, 0, 1, tuple(owner_table([0]))), dag)


def test_input_stream_ends_only_when_every_queue_delivered_done():
    a, b = BatchQueue(), BatchQueue()
    stream = InputStream(0, 0, [a, b])
    a.put([1, 2, DONE_ITEM])
    items = []
    assert stream.drain_to(items) is Event.ITEMS and items == [1, 2]
    assert not stream.is_done
    b.put([DONE_ITEM])
    assert stream.drain_to([]) is Event.DONE and stream.is_done


def test_input_stream_reports_a_watermark_only_when_the_minimum_advances():
    a, b = BatchQueue(), BatchQueue()
    stream = InputStream(0, 0, [a, b])
    a.put([Watermark(10)])
    assert stream.drain_to([]) is Event.ITEMS  # b has none yet: the minimum is unknown
    b.put([Watermark(7)])
    assert stream.drain_to([]) is Event.WATERMARK and stream.watermark == 7
    b.put([DONE_ITEM])
    assert stream.drain_to([]) is Event.WATERMARK and stream.watermark == 10


def test_outbound_partitioned_edge_routes_by_the_partition_table():
    targets = [BatchQueue(), BatchQueue()]
    table = [p % 2 for p in range(PARTITION_COUNT)]
    edge = OutboundEdge(targets, Routing.PARTITIONED, key_fn=lambda x: x, partition_targets=table)
    keys = list(range(1000)) + ["a", "b", (1, None)]
    edge.push(keys + [DONE_ITEM])
    got = [targets[0].take(), targets[1].take()]
    for index, batch in enumerate(got):
        assert batch[-1] is DONE_ITEM
        assert all(table[partition_of(k)] == index for k in batch[:-1])
    assert sorted(map(repr, got[0][:-1] + got[1][:-1])) == sorted(map(repr, keys))
