"""How much one step of the member's loop does: a batch and the watermark behind it
cross a tasklet in one call, a step carries data through a member in flow order, a
tasklet waiting for input is not called until input (or its deadline) comes, and a
sender sends a watermark and the items behind it in one call."""
import time

import pytest

from jetmq.core import DAG, CollectSinkProcessor, Edge, Processor
from jetmq.core.markers import DONE_ITEM, Watermark
from jetmq.core.processor import ProcessorContext, Progress
from jetmq.core.partition import owner_table
from jetmq.member.engine.dataplane import HEADER, ReceiverTasklet, SenderTasklet, deserialize
from jetmq.member.engine.execution import Execution, Plan
from jetmq.member.engine.queues import BatchQueue, InputStream
from jetmq.member.engine.tasklet import ProcessorTasklet, SnapshotRequest
from jetmq.testing import wait_until

pytestmark = pytest.mark.timeout(30)


class CountingSink(CollectSinkProcessor):
    """Collects items and watermarks; counts its calls."""

    def __init__(self, out, deadline=None):
        super().__init__(out)
        self.watermarks = []
        self.try_process_calls = 0
        self.deadline = deadline

    def try_process_watermark(self, watermark):
        self.watermarks.append(watermark.timestamp)
        return True

    def try_process(self):
        self.try_process_calls += 1
        self.called_at = time.monotonic()
        return True

    def next_deadline(self):
        return self.deadline


def sink_tasklet(processor, queue):
    context = ProcessorContext(vertex_name="sink", global_index=0, local_index=0, total_parallelism=1,
                               local_parallelism=1, member_index=0, member_count=1)
    tasklet = ProcessorTasklet(processor, context, [InputStream(0, 0, [queue])], [],
                               snapshot_request=SnapshotRequest())
    tasklet.init()
    return tasklet


def test_a_batch_and_the_watermark_behind_it_cross_a_tasklet_in_one_call():
    queue = BatchQueue()
    sink = CountingSink(out := [])
    tasklet = sink_tasklet(sink, queue)
    queue.put([1, 2, Watermark(10)])
    assert tasklet.call() is Progress.MADE_PROGRESS
    assert out == [1, 2] and sink.watermarks == [10]  # not three calls: take, see the watermark, hand it over


def test_a_tasklet_waiting_for_input_is_not_called_again_until_input_comes():
    queue = BatchQueue()
    sink = CountingSink(out := [])
    tasklet = sink_tasklet(sink, queue)
    assert tasklet.call() is Progress.NO_PROGRESS
    calls = sink.try_process_calls
    for _ in range(5):  # steps that other tasklets make
        assert tasklet.call() is Progress.NO_PROGRESS
    assert sink.try_process_calls == calls, "an idle processor was called on every step"
    assert tasklet.wake_at() is None  # nothing but input wakes it
    queue.put([7])
    assert tasklet.call() is Progress.MADE_PROGRESS
    assert out == [7]


def test_a_sleeping_tasklet_is_called_when_its_processor_deadline_is_due():
    queue = BatchQueue()
    sink = CountingSink([], deadline=time.monotonic() + 0.05)
    tasklet = sink_tasklet(sink, queue)
    tasklet.call()
    calls = sink.try_process_calls
    assert tasklet.wake_at() == sink.deadline
    tasklet.call()
    assert sink.try_process_calls == calls  # not due yet
    wait_until(lambda: tasklet.call() is not None and sink.try_process_calls > calls, 5,
               "the processor was not called once its deadline had passed")
    assert sink.called_at >= sink.deadline, "called before its deadline"
    assert sink.try_process_calls == calls + 1


def test_a_sleeping_tasklet_hears_a_snapshot_commit():
    committed = []

    class CommittingSink(CountingSink):
        def snapshot_commit_finish(self, success):
            committed.append(success)
            return True

    queue = BatchQueue()
    tasklet = sink_tasklet(CommittingSink([]), queue)
    tasklet.call()
    tasklet.call()
    tasklet.commit(True)
    tasklet.call()
    assert committed == [True]


class Emitter(Processor):
    """Emits a watermark, then an item, then ends (a source's output after a pause); a
    marker ends the outbox's batch, so the item goes out in a second flush."""

    def __init__(self):
        self.pending = [Watermark(5), 5]

    def complete(self):
        while self.pending:
            if not self.outbox.offer(self.pending[0]):
                return False
            self.pending.pop(0)
        return True


def test_one_step_carries_data_through_a_member_in_flow_order():
    dag = DAG()
    source = dag.new_vertex("source", Emitter, local_parallelism=1)
    middle = dag.new_vertex("middle", lambda: IdentityProcessor(), local_parallelism=1)
    sink = dag.new_vertex("sink", lambda: CountingSink(out), local_parallelism=1)
    out = []
    dag.edge(Edge.between(source, middle)).edge(Edge.between(middle, sink))
    execution = Execution(Plan(1, 1, 0, 1, tuple(owner_table([0]))), dag)
    execution.init()
    assert execution.step()
    assert out == [5], "the item took more than one step from source to sink"


def test_receivers_come_first_and_senders_last_in_a_step():
    dag = DAG()
    source = dag.new_vertex("source", Emitter, local_parallelism=1)
    sink = dag.new_vertex("sink", lambda: CountingSink([]), local_parallelism=1)
    dag.edge(Edge.between(source, sink).distributed())
    execution = Execution(Plan(1, 1, 0, 2, tuple(owner_table([0, 1]))), dag,
                          send=lambda *frame: True, grant=lambda *credit: None)
    kinds = [type(t) for t in execution.tasklets]
    assert kinds == [ReceiverTasklet, ProcessorTasklet, ProcessorTasklet, SenderTasklet]


def test_a_sender_sends_a_watermark_and_the_items_behind_it_in_one_call():
    queue = BatchQueue()
    frames = []
    sender = SenderTasklet("edge to member 1", InputStream(0, 0, [queue]), 1, 0, 0,
                           lambda header, payload: frames.append((header, payload)) or True)
    queue.put([Watermark(5)])
    queue.put([5, 6])
    assert sender.call() is Progress.MADE_PROGRESS
    batches = [deserialize(HEADER.unpack(h)[0], p) for h, p in frames]
    assert batches == [[Watermark(5)], [5, 6]]
    queue.put([DONE_ITEM])
    assert sender.call() is Progress.DONE


class IdentityProcessor(Processor):
    def process(self, ordinal, inbox):
        while inbox:
            if not self.outbox.offer(inbox.peek()):
                return
            inbox.poll()

    def try_process_watermark(self, watermark):
        return self.outbox.offer(watermark)



class Recording(Processor):
    """Records its calls in a shared list (by vertex name)."""

    def __init__(self, calls):
        self.calls = calls

    def init_hook(self):
        self.name = self.context.vertex_name

    def complete(self):
        self.calls.append(self.name)
        return False


def test_a_step_past_its_budget_stops_and_the_next_goes_on_at_the_next_tasklet():
    calls = []
    dag = DAG()
    for name in ("a", "b", "c"):
        dag.new_vertex(name, lambda: Recording(calls), local_parallelism=1)
    execution = Execution(Plan(1, 1, 0, 1, tuple(owner_table([0]))), dag)
    execution.init()
    assert execution.step() is False and calls == ["a", "b", "c"]  # no budget: every tasklet
    calls.clear()
    assert execution.step(until=time.perf_counter()) is True  # over budget after one call
    assert calls == ["a"]
    execution.step(until=time.perf_counter())
    execution.step(until=time.perf_counter())
    assert calls == ["a", "b", "c"], "a step cut short must not start again from the first tasklet"
    execution.step(until=time.perf_counter() + 60)
    assert calls == ["a", "b", "c", "a", "b", "c"]
