"""Inbox, Outbox, markers and the built-in processors under backpressure."""

import pickle

import cloudpickle
import pytest

from jetmq.core.inbox_outbox import Inbox, Outbox
from jetmq.core.markers import DONE_ITEM, SnapshotBarrier, Watermark, is_marker
from jetmq.core.processor import Processor, ProcessorContext, Progress
from jetmq.core.processors import (
    CollectSinkProcessor,
    FilterProcessor,
    FlatMapProcessor,
    ItemsSourceProcessor,
    MapProcessor,
    NoopProcessor,
)

pytestmark = pytest.mark.timeout(30)


def inbox_of(*items) -> Inbox:
    inbox = Inbox()
    inbox.add_batch(list(items))
    return inbox


# ---- Inbox ----


def test_inbox_polls_in_order_and_iteration_does_not_remove():
    inbox = inbox_of(1, 2)
    inbox.add_batch([3])
    assert list(inbox) == [1, 2, 3] and len(inbox) == 3
    assert inbox.peek() == 1 and inbox.poll() == 1 and inbox.remove() == 2
    assert list(inbox) == [3] and bool(inbox) and not inbox.is_empty()
    assert inbox.poll() == 3
    assert inbox.is_empty() and not inbox and len(inbox) == 0


def test_inbox_carries_none_items_distinguishable_from_empty():
    inbox = inbox_of(None, None)
    missing = object()
    assert inbox.peek(missing) is None and len(inbox) == 2
    assert inbox.poll(missing) is None and inbox.poll(missing) is None
    assert inbox.poll(missing) is missing and inbox.peek() is None
    with pytest.raises(IndexError, match="empty Inbox"):
        inbox.remove()


def test_inbox_drain_calls_fn_on_every_item_and_empties():
    seen = []
    inbox = inbox_of(1, None, 3)
    inbox.poll()
    assert inbox.drain(seen.append) == 2
    assert seen == [None, 3] and inbox.is_empty()


def test_inbox_drain_to_and_take_remove_what_they_return():
    inbox = inbox_of(*range(5))
    inbox.poll()
    assert inbox.take(2) == [1, 2]
    target = ["x"]
    assert inbox.drain_to(target) == 2 and target == ["x", 3, 4]
    assert inbox.take() == [] and inbox.take(3) == []


def test_inbox_never_mutates_a_batch_given_to_it():
    shared = [1, 2]
    a, b = Inbox(), Inbox()
    a.add_batch(shared)
    b.add_batch(shared)
    a.poll()
    a.add_batch([3])
    taken = b.take()
    taken.append(99)
    a.clear()
    assert shared == [1, 2] and list(b) == []


# ---- Outbox ----


def test_outbox_offer_is_all_or_nothing_across_ordinals():
    outbox = Outbox(bucket_count=2, capacity=2)
    assert outbox.offer("a", 0) and outbox.offer("b", 0)
    assert outbox.offer("c", 1)
    assert not outbox.offer("d")  # bucket 0 is full: bucket 1 gets nothing either
    assert not outbox.offer("d", (0, 1))
    assert outbox.bucket_size(1) == 1 and outbox.total_size() == 3
    assert outbox.drain_bucket(0) == ["a", "b"]
    assert outbox.offer("d")
    assert outbox.drain_bucket(0) == ["d"] and outbox.drain_bucket(1) == ["c", "d"]
    assert outbox.drain_bucket(1) == []


def test_outbox_without_buckets_accepts_and_drops_offers_to_all():
    outbox = Outbox(bucket_count=0, capacity=1)
    assert outbox.offer("x") and outbox.offer(Watermark(1)) and outbox.offer_many(range(5)) == 1


def test_outbox_offer_many_takes_what_fits_and_consumes_no_more_of_the_iterator():
    outbox = Outbox(bucket_count=2, capacity=3)
    outbox.offer("x", 1)
    items = iter(range(10))
    assert outbox.room() == 2
    assert outbox.offer_many(items) == 2
    assert outbox.offer_many(items) == 0
    assert next(items) == 2  # nothing was pulled past what was taken
    assert outbox.offer_many(iter([7]), 0) == 1
    assert outbox.drain_bucket(0) == [0, 1, 7] and outbox.drain_bucket(1) == ["x", 0, 1]


def test_offering_a_marker_seals_its_buckets_until_drained():
    outbox = Outbox(bucket_count=2, capacity=10)
    outbox.offer("a", 0)
    assert outbox.offer(Watermark(5))
    assert not outbox.offer("b", 0) and outbox.room(0) == 0 and outbox.offer_many(["b"], 1) == 0
    batch = outbox.drain_bucket(0)
    assert batch == ["a", Watermark(5)] and is_marker(batch[-1])
    assert outbox.offer("b", 0) and not outbox.offer("b")  # bucket 1 is still sealed
    assert outbox.drain_bucket(1) == [Watermark(5)]


def test_outbox_snapshot_bucket_is_separate_bounded_and_serializes_on_offer():
    outbox = Outbox(
        bucket_count=1, capacity=1, snapshot_capacity=2, snapshot_serializer=pickle.dumps
    )
    state = {"count": 1}
    assert outbox.offer_to_snapshot("k1", state) and outbox.offer_to_snapshot("k2", 2)
    assert not outbox.offer_to_snapshot("k3", 3)
    state["count"] = 99  # mutating after the offer does not change the snapshot
    entries = outbox.drain_snapshot_bucket()
    assert [(k, pickle.loads(v)) for k, v in entries] == [("k1", {"count": 1}), ("k2", 2)]
    assert outbox.total_size() == 0 and outbox.offer_to_snapshot("k3", 3)


@pytest.mark.parametrize("ordinal", [2, -2, (0, 5), "0"])
def test_when_ordinal_is_invalid_then_outbox_error_says_which_are_valid(ordinal):
    outbox = Outbox(bucket_count=2)
    with pytest.raises(
        ValueError, match=r"invalid outbox ordinal .*2 bucket\(s\), so use 0\.\.1, -1 for all"
    ):
        outbox.offer("x", ordinal)


# ---- markers ----


def test_markers_pickle_and_done_item_keeps_its_identity():
    assert pickle.loads(pickle.dumps(DONE_ITEM)) is DONE_ITEM
    assert cloudpickle.loads(cloudpickle.dumps([DONE_ITEM]))[0] is DONE_ITEM
    for marker in (Watermark(10), SnapshotBarrier(3, is_terminal=True)):
        assert pickle.loads(pickle.dumps(marker, protocol=5)) == marker


def test_is_marker_recognises_exactly_the_three_marker_types():
    assert all(is_marker(m) for m in (Watermark(0), SnapshotBarrier(0), DONE_ITEM))
    assert not any(is_marker(x) for x in (None, 0, "DONE_ITEM", (Watermark(0),)))


# ---- Processor and Progress ----


def test_progress_of_combines_made_progress_and_done():
    assert Progress.of(False, False) is Progress.NO_PROGRESS
    assert Progress.of(True, False) is Progress.MADE_PROGRESS
    assert Progress.of(False, True) is Progress.DONE and Progress.DONE.is_done
    assert Progress.MADE_PROGRESS.made_progress and not Progress.NO_PROGRESS.made_progress


def init(processor: Processor, bucket_count: int = 1, capacity: int = 1024, **context) -> Processor:
    processor.init(Outbox(bucket_count, capacity), ProcessorContext(vertex_name="v", **context))
    return processor


def test_base_processor_forwards_watermarks_and_refuses_unexpected_input():
    processor = init(Processor())
    assert processor.try_process_watermark(Watermark(7))
    assert processor.outbox.drain_bucket(0) == [Watermark(7)]
    assert processor.complete() and processor.try_process() and processor.save_to_snapshot()
    with pytest.raises(
        NotImplementedError, match="vertex 'v' received items on ordinal 0 but its processor"
    ):
        processor.process(0, inbox_of(1))
    with pytest.raises(NotImplementedError, match="vertex 'v' received snapshot entries"):
        processor.restore_from_snapshot(inbox_of(("k", 1)))


def test_init_calls_init_hook_with_outbox_and_context_set():
    class Hooked(Processor):
        def init_hook(self):
            self.seen = (self.outbox.bucket_count, self.context.vertex_name)

    assert init(Hooked(), bucket_count=3).seen == (3, "v")


def run_transform(processor: Processor, items: list, capacity: int, batch_size: int) -> list:
    """Feed `items` in batches, calling process until each batch is consumed and
    draining the (tiny) outbox between calls, as the engine would."""
    init(processor, capacity=capacity)
    out = []
    inbox = Inbox()
    for start in range(0, len(items), batch_size):
        inbox.add_batch(items[start : start + batch_size])
        while inbox:
            processor.process(0, inbox)
            out += processor.outbox.drain_bucket(0)
    return out


def test_flat_map_resumes_under_backpressure_without_loss_or_duplicates():
    lines = ["a b c", "", None, "d e f g h i j", "k"]

    def split(line):
        return None if line is None else line.split()

    expected = [w for line in lines if line is not None for w in line.split()]
    for capacity in (1, 2, 3, 100):
        for batch_size in (1, 2, 5):
            assert run_transform(FlatMapProcessor(split), lines, capacity, batch_size) == expected


def test_flat_map_keeps_an_item_in_the_inbox_until_all_its_results_are_out():
    processor = init(FlatMapProcessor(lambda n: range(n)), capacity=2)
    inbox = inbox_of(3)
    processor.process(0, inbox)
    assert len(inbox) == 1 and processor.outbox.drain_bucket(0) == [0, 1]
    processor.process(0, inbox)
    assert inbox.is_empty() and processor.outbox.drain_bucket(0) == [2]


def test_map_and_filter_honour_backpressure_and_map_drops_none_results():
    items = list(range(20))
    for capacity in (1, 3, 64):
        mapped = run_transform(
            MapProcessor(lambda x: None if x % 5 == 0 else x * 10), items, capacity, 7
        )
        assert mapped == [x * 10 for x in items if x % 5]
        assert run_transform(FilterProcessor(lambda x: x % 2), items, capacity, 7) == [
            x for x in items if x % 2
        ]


def test_items_source_splits_items_across_processors_and_resumes_after_backpressure():
    items = list(range(10))
    emitted = []
    for global_index in range(3):
        source = init(
            ItemsSourceProcessor(items), capacity=2, global_index=global_index, total_parallelism=3
        )
        while not source.complete():
            emitted += source.outbox.drain_bucket(0)
        emitted += source.outbox.drain_bucket(0)
    assert sorted(emitted) == items


def test_collect_sink_collects_items_and_watermarks_and_noop_discards():
    results = []
    sink = init(CollectSinkProcessor(results), bucket_count=0)
    sink.process(0, inbox_of(1, None))
    assert sink.try_process_watermark(Watermark(3))
    assert results == [1, None] and sink.watermarks == [Watermark(3)]
    inbox = inbox_of(1, 2)
    init(NoopProcessor(), bucket_count=0).process(0, inbox)
    assert inbox.is_empty()
