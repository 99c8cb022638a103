"""When a member's loop may sleep: the deadlines processors declare, how tasklets and
executions collect them, and the loop's poll timeout made of them."""
import os
import threading
import time

import pytest

from jetmq.core import DAG, CollectSinkProcessor, Edge, MapProcessor, Processor
from jetmq.core.partition import owner_table
from jetmq.core.processor import DEFAULT_POLL_S
from jetmq.member import runtime
from jetmq.member.engine.execution import Execution, ExecutionFailed, Plan
from jetmq.pipeline import Sinks
from jetmq.pipeline.events import EventTimeMapper, EventTimePolicy, wall_ms
from jetmq.pipeline.processors.stream_sources import ItemStreamProcessor, default_item
from jetmq.testing import SequenceSource
from jetmq.transport import Poller
from jetmq.transport.waker import Waker

pytestmark = pytest.mark.timeout(30)


class WaitingSource(Processor):
    """Emits nothing; declares ``deadline()`` (a function of nothing) as its next deadline."""

    def __init__(self, deadline):
        self.deadline = deadline

    def complete(self):
        return False

    def next_deadline(self):
        return self.deadline()


class SilentSource(Processor):
    """A user source that waits for something and declares nothing."""

    def complete(self):
        return False


class BurstSource(Processor):
    """Emits ``count`` items as fast as the outbox takes them, then nothing; it declares
    that only input would wake it."""

    def __init__(self, count):
        self.count = count

    def complete(self):
        if self.count:
            self.count -= self.outbox.offer_many(range(min(self.count, self.outbox.room())))
        return False

    def next_deadline(self):
        return None


class RefusingSink(Processor):
    """Takes nothing: its input backs up to the source."""

    def process(self, ordinal, inbox):
        pass

    def next_deadline(self):
        return None


def execution_of(dag: DAG) -> Execution:
    execution = Execution(Plan(1, 1, 0, 1, tuple(owner_table([0]))), dag)
    execution.init()
    return execution


def settle(execution: Execution) -> None:
    """Step until a step moves nothing (what the member's loop does before it sleeps)."""
    for _ in range(10_000):
        if not execution.step():
            return
    raise AssertionError(f"the execution never settled: {execution.tasklets}")


def chain(source_supplier, sink_supplier=lambda: CollectSinkProcessor([]), queue_size: int = 1024) -> DAG:
    dag = DAG()
    source = dag.new_vertex("source", source_supplier)
    mapped = dag.new_vertex("map", lambda: MapProcessor(lambda x: x))
    sink = dag.new_vertex("sink", sink_supplier)
    dag.edge(Edge.between(source, mapped).with_queue_size(queue_size)).edge(Edge.between(mapped, sink))
    return dag


def test_a_source_that_declares_only_input_leaves_the_whole_execution_without_a_deadline():
    execution = execution_of(chain(lambda: WaitingSource(lambda: None)))
    settle(execution)
    assert execution.next_deadline() is None


def test_the_execution_takes_the_earliest_deadline_of_its_processors():
    now = time.monotonic()
    dag = DAG()
    dag.new_vertex("late", lambda: WaitingSource(lambda: now + 5.0))
    dag.new_vertex("early", lambda: WaitingSource(lambda: now + 1.0))
    dag.new_vertex("input-only", lambda: WaitingSource(lambda: None))
    execution = execution_of(dag)
    settle(execution)
    assert execution.next_deadline() == now + 1.0


def test_a_source_that_declares_nothing_is_called_again_after_the_default_interval():
    execution = execution_of(chain(SilentSource))
    settle(execution)
    before = time.monotonic()
    deadline = execution.next_deadline()
    assert before + DEFAULT_POLL_S <= deadline <= time.monotonic() + DEFAULT_POLL_S


def test_a_source_blocked_by_a_full_queue_waits_for_its_consumer_not_for_a_clock():
    due_now = time.monotonic
    execution = execution_of(chain(lambda: BurstSource(50_000), sink_supplier=RefusingSink, queue_size=4))
    settle(execution)
    # the source emitted more than the queues take: its outbox holds the rest
    source = next(t for t in execution.processor_tasklets if t.context.vertex_name == "source")
    assert source.outbox.total_size() > 0
    source.processor.next_deadline = due_now  # even a source that says "due now" waits for room
    assert execution.next_deadline() is None


def test_a_processor_whose_deadline_raises_fails_the_execution_naming_it():
    def broken():
        raise ValueError("no clock")
    execution = execution_of(chain(lambda: WaitingSource(broken)))
    settle(execution)
    with pytest.raises(ExecutionFailed, match="source.*ValueError: no clock"):
        execution.next_deadline()


def test_what_a_source_emits_reaches_the_sink_in_the_same_step():
    out = []
    execution = execution_of(chain(lambda: BurstSource(3), sink_supplier=lambda: CollectSinkProcessor(out)))
    execution.step()  # source emits and flushes, map maps and flushes, sink takes: one turn
    assert out == [0, 1, 2]


def test_a_paced_source_declares_when_its_next_item_is_due_and_emits_it_then():
    out = []
    execution = execution_of(chain(lambda: SequenceSource(keys=1, per_second=5),
                                   sink_supplier=lambda: CollectSinkProcessor(out)))
    settle(execution)
    deadline = execution.next_deadline()
    assert 0.1 < deadline - time.monotonic() <= 1 / 5  # not the default poll: when item 0 is due
    assert out == []
    time.sleep(max(0.0, deadline - time.monotonic()))  # the member's poller sleeps this long
    settle(execution)
    assert out == [(0, 0)]
    assert execution.next_deadline() == pytest.approx(deadline + 1 / 5, abs=1e-6)


def test_item_stream_declares_the_timestamp_of_its_next_item():
    source = ItemStreamProcessor(10, default_item, EventTimePolicy("native"))
    source.origin, source.sequence = wall_ms(), 5  # item 5 of 10/s: 500 ms after the origin
    now = time.monotonic()
    assert source.fill_deadline(now) - now == pytest.approx(0.5, abs=0.01)
    source.sequence = 0
    assert source.fill_deadline(now) == pytest.approx(now, abs=0.001)


def test_a_watermark_withheld_by_the_throttle_is_due_a_throttle_after_the_last_item():
    mapper = EventTimeMapper(EventTimePolicy("fn", timestamp_fn=lambda ts: ts, throttle_ms=10,
                                             idle_timeout_ms=1000), now=100.0)
    out = []
    mapper.map([5_000], out, 100.0, 1_000_000)
    mapper.map([5_004], out, 100.001, 1_000_001)  # within the throttle: its watermark waits
    assert [w.timestamp for w in out if not isinstance(w, list)] == [5_000]
    deadline = mapper.next_idle_deadline(100.002, 1_000_002)
    assert deadline == pytest.approx(100.011)
    assert mapper.on_idle(deadline - 0.0005, 1_000_010) is None
    assert mapper.on_idle(deadline, 1_000_011).timestamp == 5_004
    # then the idle timeout: a second after the last item
    assert mapper.next_idle_deadline(100.02, 1_000_020) == pytest.approx(101.001)


def test_an_idle_source_watermark_follows_the_clock_a_throttle_at_a_time():
    mapper = EventTimeMapper(EventTimePolicy("fn", timestamp_fn=lambda ts: ts, throttle_ms=10,
                                             idle_timeout_ms=1000), now=100.0)
    mapper.map([5_000], [], 100.0, 1_000_000)
    assert mapper.on_idle(101.0, 1_001_000).timestamp == 6_000
    deadline = mapper.next_idle_deadline(101.0, 1_001_000)
    assert deadline == pytest.approx(101.01, abs=0.001)
    assert mapper.on_idle(deadline - 0.002, 1_001_008) is None
    assert mapper.on_idle(deadline, 1_001_010).timestamp == 6_010


def test_without_timestamps_no_watermark_is_ever_due():
    assert EventTimeMapper(EventTimePolicy("none"), now=0.0).next_idle_deadline(5.0, 5_000) is None


class FakeExecutions:
    def __init__(self, deadline, peer_check=None):
        self.deadline = deadline
        self.peer_check = peer_check

    def next_deadline(self):
        return self.deadline

    def next_peer_check(self):
        return self.peer_check


class FakeLogs:
    def __init__(self, due=None):
        self.due = due

    def wake_at(self):
        return self.due


def member_with(deadline, peer_check=None, logs_due=None, leave_asked=None):
    member = runtime.MemberRuntime.__new__(runtime.MemberRuntime)
    member._stepped_when_due = False
    member._leave_asked = leave_asked
    member.executions = FakeExecutions(deadline, peer_check)
    member.job_logs = FakeLogs(logs_due)
    return member


def idle_timeout(deadline, step_started=None, **timers):
    return member_with(deadline, **timers)._idle_timeout(time.monotonic() if step_started is None else step_started)


def test_the_loop_sleeps_until_the_earliest_deadline_and_without_one_until_something_arrives():
    now = time.monotonic()
    assert 0.0113 < idle_timeout(now + 0.0123) <= 0.0123
    assert idle_timeout(None) is None  # no timer at all: a socket, a signal or another thread wakes it
    assert idle_timeout(now + 60) > 59  # no tick: a far deadline is slept until
    assert idle_timeout(now + 60, peer_check=now + 0.5) <= 0.5
    assert idle_timeout(None, logs_due=now + 0.2) <= 0.2
    leave_ends = now - runtime.LEAVE_TIMEOUT_S + 0.3  # a graceful leave gives up in 0.3 s
    assert 0.2 < idle_timeout(None, leave_asked=leave_ends) <= 0.3


def test_the_poller_rounds_a_timeout_up_never_waking_before_the_deadline():
    waker = Waker()
    poller = Poller()
    poller.register(waker)
    try:
        for timeout in (0.0123, 0.0005):
            started = time.monotonic()
            assert poller.poll(timeout) == []
            assert time.monotonic() - started >= timeout
    finally:
        waker.close()


def test_a_waker_ends_a_poll_without_a_timeout_from_another_thread():
    waker = Waker()
    poller = Poller()
    poller.register(waker)
    try:
        timer = threading.Timer(0.05, waker.wake)
        timer.start()
        started = time.monotonic()
        assert poller.poll(None) == [waker]
        assert 0.04 < time.monotonic() - started < 5
        assert waker.drain() == b"\0"
        assert poller.poll(0) == []  # drained: no longer readable
    finally:
        timer.join()
        waker.close()


def test_a_deadline_already_due_before_the_step_costs_a_millisecond_not_a_spin():
    started = time.monotonic()
    assert idle_timeout(started - 1.0, step_started=started) == runtime.MIN_WAIT_S
    assert idle_timeout(started + 1e-9, step_started=started) < 0.001


def test_a_deadline_that_came_due_during_the_step_gets_one_more_step_at_once_not_a_spin():
    started = time.monotonic()
    member = member_with(time.monotonic())  # due now, after the step began
    assert member._idle_timeout(started) == 0.0
    assert member._idle_timeout(time.monotonic() - 1e-3) == runtime.MIN_WAIT_S  # again: a processor that is wrong


class ListServices:
    """Where Sinks.list writes in a unit test: nowhere."""

    def list_add_all(self, name, items):
        pass


def test_an_item_stream_pipeline_sleeps_until_its_next_item_whatever_its_sinks():
    from jetmq.pipeline import Pipeline, SinkBuilder, Sources

    for sink in (SinkBuilder.sink_builder("s", lambda c: None).receive_fn(lambda s, i: None).build(),
                 Sinks.list("l")):
        p = Pipeline()
        p.read_from(Sources.item_stream(5)).with_native_timestamps(0).map(lambda e: e.sequence).write_to(sink)
        execution = Execution(Plan(1, 1, 0, 1, tuple(owner_table([0])), services=ListServices()), p.to_dag())
        started = time.monotonic()
        execution.init()  # the stream's origin: item n is due n * 200 ms after it
        settle(execution)
        time.sleep(0.25)  # let item 1 come due: the clock's passing is what this test is about
        settle(execution)
        # item 2 is due next, 400 ms after the origin, however long the calls above took
        due = execution.next_deadline() - started
        assert 0.39 < due <= 0.45, f"with {sink}: the loop would wake {due * 1000:.1f} ms after the origin"
        execution.close()


def test_a_closed_waker_writes_nowhere_though_its_descriptors_numbers_are_reused():
    waker = Waker()
    write_fd = waker.write_fd
    waker.close()
    read_end, write_end = os.pipe()  # the lowest free numbers: very likely the waker's old ones
    try:
        os.set_blocking(read_end, False)
        waker.wake()  # from a thread that did not hear of the close
        for fd in (read_end, write_end):
            if fd == write_fd or fd == waker.fileno():
                with pytest.raises(BlockingIOError):
                    os.read(read_end, 1)  # nothing was written into the new pipe
        waker.close()  # twice: harmless
    finally:
        os.close(read_end)
        os.close(write_end)
