"""A map / filter / peek chain feeding only a session window runs in the window's
drop-late vertex (no vertex, local edge and tasklet of its own), with the same events
out: the chain's outputs, keeping their timestamps, less those behind the watermark."""
import pytest

from jetmq.core import Inbox, Outbox, ProcessorContext, SnapshotContext, Watermark
from jetmq.pipeline import Pipeline, Sinks, Sources, WindowDefinition
from jetmq.pipeline.aggregate import AggregateOperations as ops
from jetmq.pipeline.processors.windows import DropLateEventsProcessor
from jetmq.pipeline.windows import SessionTable

pytestmark = pytest.mark.timeout(30)


def names(p):
    return [v.name for v in p.to_dag().vertices()]


def events(p):
    return p.read_from(Sources.items([("k", 1)])).with_timestamps(lambda e: e[1], 0)


def test_a_map_filter_chain_before_a_session_window_runs_in_its_drop_late_vertex():
    p = Pipeline()
    (events(p).map(lambda e: (e[0], e[1] * 2)).filter(lambda e: e[1] > 0)
     .grouping_key(lambda e: e[0]).window(WindowDefinition.session(10)).aggregate(ops.counting())
     .write_to(Sinks.noop()))
    assert names(p) == ["items-source", "add-timestamps", "map-filter-session-window-drop-late-counting",
                        "session-window-counting", "noop-sink"]
    edges = {(e.source_name, e.dest_name): e for e in p.to_dag().edges()}
    assert not edges[("add-timestamps", "map-filter-session-window-drop-late-counting")].is_distributed


def test_a_chain_with_a_flat_map_or_another_reader_keeps_its_own_vertex():
    p = Pipeline()
    events(p).flat_map(lambda e: [e, e]).window(WindowDefinition.session(10)).aggregate(ops.counting()) \
        .write_to(Sinks.noop())
    assert "flat_map" in names(p) and "session-window-drop-late-counting" in names(p)
    p = Pipeline()
    mapped = events(p).map(lambda e: e)
    mapped.write_to(Sinks.list("also"))
    mapped.window(WindowDefinition.session(10)).aggregate(ops.counting()).write_to(Sinks.noop())
    assert "map" in names(p) and "session-window-drop-late-counting" in names(p)


def started(processor, capacity):
    processor.init(Outbox(1, capacity, snapshot_capacity=2),
                   ProcessorContext("v", global_index=0, total_parallelism=1, services=None,
                                    snapshot_context=SnapshotContext("NONE")))
    return processor


def test_the_absorbed_chain_runs_before_late_events_are_dropped_within_the_outbox_room():
    steps = (("map", lambda x: x * 10), ("filter", lambda x: x != 30))
    processor = started(DropLateEventsProcessor(steps), capacity=2)
    assert processor.try_process_watermark(Watermark(5))
    assert processor.outbox.drain_bucket(0) == [Watermark(5)]
    inbox = Inbox()
    inbox.add_batch([(4, 1), (6, 2), (7, 3), (8, 4), (3, 5), (9, 6)])
    out = []
    while inbox:
        processor.process(0, inbox)
        out += processor.outbox.drain_bucket(0)
    # (4, 1) and (3, 5) are late; (7, 3) maps to 30, which the filter drops; the rest keep their ts
    assert out == [(6, 20), (8, 40), (9, 60)]
    assert processor.context.metrics["lateEventsDropped"] == 2


def test_a_session_that_grew_closes_at_its_new_end_and_the_next_one_of_its_key_on_time():
    # Sessions keep the deadline they were registered at when they grow (the in-order fast
    # path): close() must check the real end, and register what stays open again
    table = SessionTable(5, ops.counting())
    for ts in (0, 3, 6, 20, 21):  # "k": [0, 11) grown from [0, 5); then [20, 26), appended
        table.add_item("k", ts, ts)
    table.add_item("j", 2, 2)  # "j": [2, 7)
    assert table.close(wm=5) == []  # "k"'s first registration (5) is reached, its session is not
    assert table.close(wm=7) == [("j", 2, 7, 1)]
    assert table.close(wm=10) == []
    assert table.close(wm=11) == [("k", 0, 11, 3)]
    assert table.close(wm=25) == []
    assert table.close(wm=26) == [("k", 20, 26, 2)]
    assert not table.sessions
    table.add_item("k", 30, 30)  # a key that had closed all its sessions starts again
    assert table.close(wm=35) == [("k", 30, 35, 1)]
