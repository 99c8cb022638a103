"""Event time, windows and streaming processors on their own: frames, sessions,
watermark generation, late items, TTL state, streaming sources and sinks, snapshots."""
import itertools
import random
from collections import defaultdict

import pytest

from jetmq.core import BroadcastKey, Inbox, Outbox, ProcessorContext, SnapshotContext, Watermark
from jetmq.pipeline import Pipeline, Sinks, Sources, WindowDefinition, WindowResult
from jetmq.pipeline.aggregate import AggregateOperations as ops
from jetmq.pipeline.events import EventTimeMapper, EventTimePolicy, SimpleEvent
from jetmq.pipeline.processors.aggregation import AccumulateAllProcessor, CombineProcessor
from jetmq.pipeline.processors.event_time import InsertWatermarksProcessor
from jetmq.pipeline.processors.sinks import TimestampStrippingSink, WriteListProcessor
from jetmq.pipeline.processors.stream_sources import FileWatcherProcessor, ItemStreamProcessor
from jetmq.pipeline.processors.stream_stateful import RollingAggregateProcessor, StreamMapStatefulProcessor
from jetmq.pipeline.processors.windows import (
    DropLateEventsProcessor,
    FrameAccumulateProcessor,
    SessionWindowProcessor,
    WindowCombineProcessor,
)
from jetmq.pipeline.windows import SessionTable, frame_end, window_ends_to_emit, windows_of_frame

pytestmark = pytest.mark.timeout(30)


def context(index=0, total=1, guarantee="NONE", services=None, name="v"):
    return ProcessorContext(name, global_index=index, total_parallelism=total, services=services,
                            snapshot_context=SnapshotContext(guarantee))


def started(processor, capacity=1024, **kwargs):
    processor.init(Outbox(1, capacity, snapshot_capacity=2), context(**kwargs))
    return processor


def feed(processor, items):
    inbox = Inbox()
    inbox.add_batch(list(items))
    while inbox:
        processor.process(0, inbox)
        out = processor.outbox.drain_bucket(0)
        assert not out or all(type(x) is not Watermark for x in out)
        yield from out


def run(processor, method, *args):
    """Call `method` until it returns True, draining the outbox; everything it emitted."""
    out = []
    for _ in range(10_000):
        done = getattr(processor, method)(*args)
        out += processor.outbox.drain_bucket(0)
        if done:
            return out
    raise AssertionError(f"{method} never returned True")


def snapshot(processor):
    entries = []
    while not processor.save_to_snapshot():
        entries += processor.outbox.drain_snapshot_bucket()
        processor.outbox.drain_bucket(0)
    return entries + processor.outbox.drain_snapshot_bucket()


def restore(processor, entries):
    inbox = Inbox()
    inbox.add_batch(entries)
    processor.restore_from_snapshot(inbox)
    assert processor.finish_snapshot_restore()
    return processor


# ---- frame and window arithmetic -----------------------------------------------------------

def test_window_definitions_validate_and_describe_themselves():
    assert WindowDefinition.tumbling(10).describe() == "tumbling(10)"
    assert WindowDefinition.sliding(30, 10).describe() == "sliding(30, 10)"
    assert WindowDefinition.session(5).describe() == "session(5)"
    for make in (lambda: WindowDefinition.sliding(30, 7), lambda: WindowDefinition.tumbling(0),
                 lambda: WindowDefinition.session(-1)):
        with pytest.raises(ValueError):
            make()


def test_frames_are_named_by_their_end_and_belong_to_size_over_step_windows():
    assert [frame_end(ts, 10) for ts in (-11, -10, -1, 0, 9, 10)] == [-10, 0, 0, 10, 10, 20]
    assert list(windows_of_frame(20, 30, 10)) == [20, 30, 40]
    # windows already emitted (end <= after) are not emitted again
    assert window_ends_to_emit([10, 20], 30, 10, wm=35) == [10, 20, 30]
    assert window_ends_to_emit([10, 20], 30, 10, wm=45, after=30) == [40]
    assert window_ends_to_emit([10], 30, 10, wm=None, after=20) == [30]


def test_sessions_merge_when_their_intervals_overlap():
    table = SessionTable(5, ops.counting())
    for ts in (0, 4, 20, 12):  # 12 covers [12, 17); 20 is 3 after 17: a third session... bridged below
        table.add_item("k", ts, ts)
    assert [tuple(s[:2]) for s in table.sessions["k"]] == [(0, 9), (12, 17), (20, 25)]
    table.add_item("k", 16, 16)  # [16, 21) overlaps both: one session
    assert [tuple(s) for s in table.sessions["k"]] == [(0, 9, 2), (12, 25, 3)]
    table.add_item("k", 30, 30)  # exactly the gap after 25's item: [30, 35) only touches [12, 30)
    assert [tuple(s) for s in table.sessions["k"]] == [(0, 9, 2), (12, 25, 3), (30, 35, 1)]
    table.add_item("k", 8, 8)  # [8, 13) overlaps [0, 9) and [12, 25): combined
    assert [tuple(s) for s in table.sessions["k"]] == [(0, 25, 6), (30, 35, 1)]
    assert table.close(wm=24) == []
    assert table.close(wm=25) == [("k", 0, 25, 6)]  # complete once the watermark reaches its end
    assert table.close(wm=None) == [("k", 30, 35, 1)]
    assert not table.sessions and len(table) == 0


# ---- watermark generation ------------------------------------------------------------------

def watermarks_and_events(segments):
    return [("wm", s.timestamp) if type(s) is Watermark else ("events", [ts for ts, _ in s]) for s in segments]


def test_watermarks_trail_the_top_timestamp_by_the_lag_and_precede_the_item_that_advanced_them():
    mapper = EventTimeMapper(EventTimePolicy("fn", lambda x: x, allowed_lag_ms=5, throttle_ms=10), now=0.0)
    out = []
    mapper.map([100, 98, 103, 112, 115, 90], out, now=0.0, now_wall_ms=0)
    # 100 -> wm 95; 103 would advance it less than 10; 112 -> wm 107, before 112; 115 too little
    assert watermarks_and_events(out) == [("wm", 95), ("events", [100, 98, 103]), ("wm", 107),
                                          ("events", [112, 115, 90])]


def test_a_withheld_watermark_goes_out_when_the_input_pauses():
    mapper = EventTimeMapper(EventTimePolicy("fn", lambda x: x, allowed_lag_ms=0, throttle_ms=10), now=0.0)
    out = []
    mapper.map([100, 105], out, now=0.0, now_wall_ms=0)
    assert watermarks_and_events(out)[0] == ("wm", 100)
    assert mapper.on_idle(now=0.005, now_wall_ms=0) is None  # a pause shorter than the throttle
    assert mapper.on_idle(now=0.010, now_wall_ms=0) == Watermark(105)
    assert mapper.on_idle(now=0.020, now_wall_ms=0) is None


def test_an_idle_source_advances_its_watermark_with_the_wall_clock():
    policy = EventTimePolicy("fn", lambda x: x, allowed_lag_ms=10, idle_timeout_ms=1000)
    never = EventTimeMapper(policy, now=0.0)
    assert never.on_idle(now=0.5, now_wall_ms=5_000) is None  # not idle yet
    assert never.on_idle(now=1.0, now_wall_ms=5_000) == Watermark(4_990)  # never had an item: the clock
    quiet = EventTimeMapper(policy, now=0.0)
    quiet.map([300], [], now=0.0, now_wall_ms=9_999)
    assert quiet.on_idle(now=2.5, now_wall_ms=9_999) == Watermark(300 - 10 + 2_500)


def test_ingestion_timestamps_are_the_wall_clock_and_none_means_no_watermarks():
    out = []
    ingestion = EventTimeMapper(EventTimePolicy("ingestion"), now=0.0)
    ingestion.map(["a", "b"], out, now=0.0, now_wall_ms=77)
    assert out == [Watermark(77), [(77, "a"), (77, "b")]]
    assert ingestion.on_idle(now=0.0, now_wall_ms=80) is None  # throttled
    assert ingestion.on_idle(now=0.0, now_wall_ms=90) == Watermark(90)  # idle: the clock, at once
    out = []
    mapper = EventTimeMapper(EventTimePolicy("none"), now=0.0)
    mapper.map(["a"], out, now=0.0, now_wall_ms=77)
    assert out == [["a"]] and mapper.on_idle(now=100.0, now_wall_ms=10**9) is None


def test_insert_watermarks_processor_emits_one_watermark_per_call():
    processor = started(InsertWatermarksProcessor(EventTimePolicy("fn", lambda x: x, 0, throttle_ms=10)))
    inbox = Inbox()
    inbox.add_batch([0, 5, 10, 20])
    calls = []
    while inbox or processor._segments:
        processor.process(0, inbox) if inbox else processor.try_process()
        calls.append(processor.outbox.drain_bucket(0))
    assert calls == [[Watermark(0)], [(0, 0), (5, 5), Watermark(10)], [(10, 10), Watermark(20)], [(20, 20)]]
    processor._mapper._last_item_at -= 1  # a pause: nothing is withheld (20 went out)
    assert processor.try_process() and processor.outbox.drain_bucket(0) == []


# ---- sliding and tumbling windows ----------------------------------------------------------

def test_late_items_are_counted_and_dropped_never_failing():
    processor = started(FrameAccumulateProcessor(WindowDefinition.tumbling(10), ops.counting(), None))
    list(feed(processor, [(5, "a"), (12, "b")]))
    assert run(processor, "try_process_watermark", Watermark(10)) == [(None, 10, 1), Watermark(10)]
    list(feed(processor, [(9, "late"), (3, "later"), (10, "in time")]))
    assert processor.context.metrics["lateEventsDropped"] == 2
    assert run(processor, "complete") == [(None, 20, 2)]


def window_pipeline(window, events, keyed=True, wms=(), snapshot_at=None):
    """Stage one and two by hand: events, then watermarks; optionally snapshot stage two
    after the watermark `snapshot_at` and go on with a restored copy."""
    op = ops.summing(lambda x: x)
    key_fn = (lambda x: x % 2) if keyed else None
    first = started(FrameAccumulateProcessor(window, op, key_fn))
    second = started(WindowCombineProcessor(window, op, keyed))
    results = []
    pending = sorted(events)
    for wm in [*wms, None]:
        batch = [e for e in pending if wm is None or e[0] < wm]
        pending = [e for e in pending if not (wm is None or e[0] < wm)]
        frames = list(feed(first, batch))
        frames += run(first, "complete") if wm is None else run(first, "try_process_watermark", Watermark(wm))
        results += list(feed(second, [f for f in frames if type(f) is not Watermark]))
        results += run(second, "complete") if wm is None else run(second, "try_process_watermark", Watermark(wm))
        if wm is not None and wm == snapshot_at:
            saved = snapshot(second)
            second = restore(started(WindowCombineProcessor(window, op, keyed)), saved)
    return sorted((r for r in results if type(r) is not Watermark), key=lambda e: (e[1].end, repr(e[1].key)))


def reference_windows(window, events, keyed=True):
    sums = defaultdict(int)
    for ts, x in events:
        for end in windows_of_frame(frame_end(ts, window.step_ms), window.size_ms, window.step_ms):
            sums[(end, x % 2 if keyed else None)] += x
    return sorted(((end - 1, WindowResult(end - window.size_ms, end, key, total))
                   for (end, key), total in sums.items()), key=lambda e: (e[1].end, repr(e[1].key)))


@pytest.mark.parametrize("window", [WindowDefinition.tumbling(10), WindowDefinition.sliding(30, 10)],
                         ids=["tumbling", "sliding"])
@pytest.mark.parametrize("keyed", [True, False], ids=["keyed", "not-keyed"])
def test_windows_equal_a_reference_across_watermarks_and_a_snapshot(window, keyed):
    rng = random.Random(3)
    events = [(rng.randrange(0, 200), n) for n in range(300)]
    expected = reference_windows(window, events, keyed)
    assert window_pipeline(window, events, keyed) == expected
    assert window_pipeline(window, events, keyed, wms=range(20, 200, 20), snapshot_at=100) == expected


def test_window_results_carry_the_timestamp_end_minus_one():
    assert window_pipeline(WindowDefinition.tumbling(10), [(3, 1)], keyed=False) == \
        [(9, WindowResult(0, 10, None, 1))]


def reference_sessions(events, gap, keyed):
    """(key, start, end, count) of each session of `events` ((ts, key) pairs): per key,
    runs of items less than `gap` apart."""
    by_key = defaultdict(list)
    for ts, key in events:
        by_key[key if keyed else None].append(ts)
    out = []
    for key, stamps in by_key.items():
        stamps.sort()
        start = last = stamps[0]
        count = 0
        for ts in stamps:
            if ts - last >= gap:
                out.append((key, start, last + gap, count))
                start, count = ts, 0
            last, count = ts, count + 1
        out.append((key, start, last + gap, count))
    return sorted(out, key=repr)


@pytest.mark.parametrize("keyed", [True, False], ids=["keyed", "not-keyed"])
def test_session_windows_equal_a_reference_across_watermarks_late_items_and_a_restore(keyed):
    # Given items of three keys out of order within a lag of 20, watermarks trailing
    # them by 20, and late items behind them
    rng = random.Random(5)
    window, op = WindowDefinition.session(7), ops.counting()
    events = [(n * 2 + rng.randrange(0, 20), rng.randrange(3)) for n in range(300)]
    vertex = "session-window-counting"

    def new():
        return started(SessionWindowProcessor(window, op, (lambda k: k) if keyed else None), name=vertex)

    processor, results, in_time, top = new(), [], [], None
    for n, (ts, key) in enumerate(events):
        top = ts if top is None else max(top, ts)
        if n % 10 == 9:
            results += run(processor, "try_process_watermark", Watermark(top - 20))
            late = (top - 40, key)
            results += list(feed(processor, [late]))  # behind the watermark: dropped
        if n == 150:  # a snapshot, restored into a new processor
            entries = snapshot(processor)
            assert {k for k, _ in entries} - {BroadcastKey("window-watermark")} <= ({0, 1, 2} if keyed else {vertex})
            processor = restore(new(), entries)
        results += list(feed(processor, [(ts, key)]))
        in_time.append((ts, key))
    results += run(processor, "complete")
    # Then the sessions equal the reference, late items left out and counted
    assert processor.context.metrics["lateEventsDropped"] == 15  # the restored processor's: 15 of 30
    got = [r for r in results if type(r) is not Watermark]
    assert all(ts == r.end - 1 for ts, r in got)
    assert sorted(((r.key, r.start, r.end, r.value) for _, r in got), key=repr) == \
        reference_sessions(in_time, 7, keyed)
    assert_no_result_behind_a_forwarded_watermark(results)


# ---- the order of results and watermarks ---------------------------------------------------

def window_processors(window, keyed=True):
    """The processors a keyed (or not) window aggregation lowers to, in order, started."""
    p = Pipeline()
    stage = p.read_from(Sources.items([])).with_timestamps(lambda e: e[1], 0)
    if keyed:
        stage = stage.grouping_key(lambda e: e[0])
    stage.window(window).aggregate(ops.counting()).write_to(Sinks.noop())
    return [started(v.processor_supplier(), name=v.name) for v in p.to_dag().vertices()
            if v.name.startswith(("window-", "session-window-"))]


def drive(processors, script):
    """Pass `script` (events and Watermarks, in order) through `processors` in a row, as
    one member does: each one's output, watermarks included, is the next one's input.
    The last one's output, in order, then what it emits when its input ends."""
    stream = list(script)
    for processor in processors:
        out = []
        for x in stream:
            out += run(processor, "try_process_watermark", x) if type(x) is Watermark else list(feed(processor, [x]))
        stream = out + run(processor, "complete")
    return stream


def assert_no_result_behind_a_forwarded_watermark(out):
    forwarded = None
    for x in out:
        if type(x) is Watermark:
            forwarded = x.timestamp
        elif forwarded is not None:
            ts, result = x
            assert ts >= forwarded, f"{result} (ts {ts}) emitted after watermark {forwarded}: {out}"
            assert result.end > forwarded, f"{result} was closed by watermark {forwarded} but came after it: {out}"


@pytest.mark.parametrize("window", [WindowDefinition.session(10), WindowDefinition.tumbling(10),
                                    WindowDefinition.sliding(20, 10)], ids=["session", "tumbling", "sliding"])
@pytest.mark.parametrize("keyed", [True, False], ids=["keyed", "not-keyed"])
def test_a_window_emits_what_a_watermark_closes_before_forwarding_it_never_behind_it(window, keyed):
    # Given items whose watermarks each equal the end of the window (or session) before
    script = [Watermark(0), (0, ("k", 0)), Watermark(10), (12, ("z", 12)), Watermark(22), (30, ("z", 30)),
              Watermark(45), (45, ("z", 45)), (52, ("k", 52)), Watermark(55), (60, ("k", 60))]
    # When they pass through the window's processors as lowered
    out = drive(window_processors(window, keyed), script)
    # Then every result comes out before the watermark that closes it, with a timestamp
    # (end - 1) not behind any watermark sent on before it: a later window keeps it
    assert_no_result_behind_a_forwarded_watermark(out)
    assert [x.timestamp for x in out if type(x) is Watermark] == [0, 10, 22, 45, 55]
    results = [x for x in out if type(x) is not Watermark]
    assert all(ts == r.end - 1 for ts, r in results)
    assert sum(r.value for _, r in results) == 6 * (window.size_ms // window.step_ms if not window.is_session else 1)


def test_session_results_are_not_dropped_as_late_by_a_window_after_them():
    from tests.unit.test_pipeline_local_run import run_local

    # Given three sessions, each item's watermark equal to the end of the session before
    p = Pipeline()
    (p.read_from(Sources.items([("k", 0), ("z", 10), ("z", 30)])).with_timestamps(lambda e: e[1], 0)
      .grouping_key(lambda e: e[0]).window(WindowDefinition.session(10)).aggregate(ops.counting())
      .window(WindowDefinition.tumbling(100)).aggregate(ops.counting())
      .write_to(Sinks.list("out")))
    # When the sessions are counted in a tumbling window
    services = run_local(p)
    # Then none was late there
    assert services.lists["out"] == [WindowResult(0, 100, None, 3)]


# ---- map_stateful with a TTL, rolling_aggregate ---------------------------------------------

def _count(state, key, item):
    state[0] += 1
    return (key, state[0])


def test_map_stateful_evicts_untouched_state_after_the_ttl_and_drops_late_items():
    evicted = []
    processor = started(StreamMapStatefulProcessor(
        lambda: [0], _count, key_fn=lambda x: x[0], timestamped=True, ttl_ms=100,
        on_evict_fn=lambda state, key, wm: evicted.append((key, state[0])) or ("evicted", key)))
    assert list(feed(processor, [(0, ("a",)), (50, ("a",)), (60, ("b",))])) == \
        [(0, ("a", 1)), (50, ("a", 2)), (60, ("b", 1))]
    assert run(processor, "try_process_watermark", Watermark(155)) == [(155, ("evicted", "a")), Watermark(155)]
    assert evicted == [("a", 2)]
    assert list(feed(processor, [(54, ("a",)), (170, ("a",)), (160, ("b",))])) == \
        [(170, ("a", 1)), (160, ("b", 2))]  # 54 < 155 - 100: late
    assert processor.context.metrics["lateEventsDropped"] == 1
    copy = restore(started(StreamMapStatefulProcessor(lambda: [0], _count, key_fn=lambda x: x[0],
                                                      timestamped=True, ttl_ms=100)), snapshot(processor))
    assert copy.states == {"a": [1], "b": [2]} and copy.touched == {"a": 170, "b": 160}
    assert run(copy, "try_process_watermark", Watermark(265)) == [Watermark(265)]
    assert run(copy, "try_process_watermark", Watermark(271)) == [Watermark(271)]
    assert copy.states == {}


def test_ungrouped_map_stateful_state_goes_back_to_its_own_processor():
    def total(state, item):
        state.append(item)
        return sum(state)

    first = started(StreamMapStatefulProcessor(list, total), index=0, total=2)
    second = started(StreamMapStatefulProcessor(list, total), index=1, total=2)
    list(feed(first, [1, 2]))
    list(feed(second, [10]))
    entries = snapshot(first) + snapshot(second)
    assert {key for key, _ in entries} == {BroadcastKey(("map-stateful", 0)), BroadcastKey(("map-stateful", 1))}
    again = restore(started(StreamMapStatefulProcessor(list, total), index=1, total=2), entries)
    assert list(feed(again, [5])) == [15]


def test_rolling_aggregate_emits_the_result_so_far_per_key():
    processor = started(RollingAggregateProcessor(ops.summing(lambda x: x[1]), lambda x: x[0], True))
    out = list(feed(processor, [(1, ("a", 1)), (2, ("b", 5)), (3, ("a", 2))]))
    assert out == [(1, ("a", 1)), (2, ("b", 5)), (3, ("a", 3))]
    copy = restore(started(RollingAggregateProcessor(ops.summing(lambda x: x[1]), lambda x: x[0], True)),
                   snapshot(processor))
    assert list(feed(copy, [(4, ("b", 1))])) == [(4, ("b", 6))]


# ---- streaming sources ----------------------------------------------------------------------

def test_item_stream_has_deterministic_timestamps_and_resumes_from_its_snapshot(monkeypatch):
    clock = itertools.count(1_000_000, 7)
    monkeypatch.setattr("jetmq.pipeline.processors.stream_sources.wall_ms", lambda: next(clock))
    source = started(ItemStreamProcessor(100, lambda ts, seq: (ts, seq), EventTimePolicy("native")))
    items = []
    for _ in range(30):
        source.complete()
        items += [x for x in source.outbox.drain_bucket(0) if type(x) is not Watermark]
    assert items and all(ts == source.origin + seq * 10 and item == (ts, seq) for ts, (_, seq), item in
                         ((ts, item, item) for ts, item in items))
    assert [seq for _, (_, seq) in items] == list(range(len(items)))
    saved = snapshot(source)
    again = restore(started(ItemStreamProcessor(100, lambda ts, seq: (ts, seq), EventTimePolicy("native"))), saved)
    assert (again.sequence, again.origin) == (source.sequence, source.origin)
    # only the processor of global index 0 emits; the others end at once
    other = started(ItemStreamProcessor(100, lambda ts, seq: seq, EventTimePolicy("native")), index=1, total=2)
    assert other.complete() is True


def test_item_stream_default_items_are_simple_events():
    p = Pipeline()
    p.read_from(Sources.item_stream(10)).with_native_timestamps(0).write_to(Sinks.noop())
    source = p.to_dag().vertices()[0].processor_supplier()
    assert source._fn(5, 1) == SimpleEvent(5, 1)


def test_file_watcher_reads_appended_lines_and_restores_offsets(tmp_path, monkeypatch):
    monkeypatch.setattr("jetmq.pipeline.processors.stream_sources.FILE_POLL_INTERVAL_S", 0)
    (tmp_path / "old").write_text("skipped\n")
    watcher = started(FileWatcherProcessor(str(tmp_path), "*", True, "utf-8", EventTimePolicy("none")))

    def lines(processor):
        out = []
        for _ in range(5):
            processor.complete()
            out += processor.outbox.drain_bucket(0)
        return out

    assert lines(watcher) == []
    with open(tmp_path / "old", "a") as f:
        f.write("one\r\ntwo\nhal")
    (tmp_path / "new").write_text("fresh\n")
    assert sorted(lines(watcher)) == ["fresh", "one", "two"]
    saved = snapshot(watcher)
    assert sorted(saved, key=repr) == [(BroadcastKey(("file", "new")), 6), (BroadcastKey(("file", "old")), 17)]
    with open(tmp_path / "old", "a") as f:
        f.write("f\n")
    (tmp_path / "newer").write_text("after the snapshot\n")
    again = restore(started(FileWatcherProcessor(str(tmp_path), "*", True, "utf-8", EventTimePolicy("none"))),
                    saved)
    assert sorted(lines(again)) == ["after the snapshot", "half"]
    watcher.close()


def test_stream_source_stage_needs_a_timestamp_choice():
    p = Pipeline()
    p.read_from(Sources.item_stream(1))
    with pytest.raises(ValueError, match="choose the event time"):
        p.to_dag()
    with pytest.raises(ValueError, match="no native timestamps"):
        Pipeline().read_from(Sources.file_watcher("/tmp")).with_native_timestamps(0)
    stage = Pipeline().read_from(Sources.item_stream(1)).without_timestamps()
    with pytest.raises(ValueError, match="no timestamps"):
        stage.window(WindowDefinition.tumbling(10))
    with pytest.raises(ValueError, match="ttl_ms needs a stage with timestamps"):
        stage.map_stateful(list, lambda s, x: x, ttl_ms=10)


# ---- sinks ----------------------------------------------------------------------------------

class StagingServices:
    def __init__(self):
        self.calls = []

    def list_add_all(self, name, items):
        self.calls.append(("add", name, list(items)))

    def stage_list_add_all(self, execution_id, epoch, name, items):
        self.calls.append(("stage", epoch, list(items)))


def test_list_sink_stages_writes_by_epoch_under_exactly_once():
    services = StagingServices()
    sink = started(WriteListProcessor("out"), services=services, guarantee="EXACTLY_ONCE")
    list(feed(sink, [1, 2]))
    sink.context.snapshot_context.current_snapshot_id = 0  # the engine starts snapshot 0
    assert sink.save_to_snapshot()
    list(feed(sink, [3]))
    sink.try_process()
    assert services.calls == [("stage", 0, [1, 2]), ("stage", 1, [3])]
    plain = StagingServices()
    sink = started(WriteListProcessor("out"), services=plain)
    list(feed(sink, [1]))
    sink.try_process()  # a stream's items go out when its input pauses
    assert plain.calls == [("add", "out", [1])]


def test_a_sink_on_a_stage_with_timestamps_gets_bare_items():
    services = StagingServices()
    sink = TimestampStrippingSink(lambda: WriteListProcessor("out"))
    sink.init(Outbox(1), context(services=services))
    list(feed(sink, [(1, "a"), (2, "b")]))
    assert sink.complete()
    assert services.calls == [("add", "out", ["a", "b"])]


# ---- snapshots of the batch aggregation -----------------------------------------------------

def test_ungrouped_accumulators_are_each_restored_once_on_fewer_processors():
    accs = [started(AccumulateAllProcessor(ops.counting()), index=i, total=3) for i in range(3)]
    for i, processor in enumerate(accs):
        list(feed(processor, range(i + 1)))
    entries = [e for p in accs for e in snapshot(p)]
    restored = [restore(started(AccumulateAllProcessor(ops.counting()), index=i, total=2), entries)
                for i in range(2)]
    assert sum(p._acc for p in restored) == 1 + 2 + 3


def test_grouped_combine_restores_its_accumulators_and_pending_results():
    combine = started(CombineProcessor(ops.counting()), capacity=1)
    list(feed(combine, [("a", 2), ("b", 3), ("a", 1)]))
    assert sorted(restore(started(CombineProcessor(ops.counting())), snapshot(combine))._accs.items()) == \
        [("a", 3), ("b", 3)]
    first = run(combine, "save_to_snapshot")  # nothing emitted by a snapshot
    assert first == []
    combine.complete()
    emitted = combine.outbox.drain_bucket(0)
    rest = restore(started(CombineProcessor(ops.counting())), snapshot(combine))
    assert sorted(emitted + run(rest, "complete")) == [("a", 3), ("b", 3)]


# ---- whole streaming pipelines in-process ---------------------------------------------------

def test_stateless_steps_merge_rebalance_and_hash_join_keep_timestamps_for_windows():
    from tests.unit.test_pipeline_local_run import run_local

    p = Pipeline()
    left = p.read_from(Sources.items(range(100))).with_timestamps(lambda x: x, 0)
    right = p.read_from(Sources.items(range(100, 200))).with_timestamps(lambda x: x - 100, 0)
    names = p.read_from(Sources.items([(0, "even"), (1, "odd")]))
    (left.flat_map(lambda x: [x, x]).filter(lambda x: x % 3).merge(right.map(lambda x: x - 100))
         .rebalance(lambda x: x % 5).peek()
         .hash_join(names, lambda x: x % 2, lambda entry: entry[0], lambda x, entry: (entry[1], x))
         .grouping_key(lambda pair: pair[0])
         .window(WindowDefinition.tumbling(50)).aggregate(ops.counting())
         .write_to(Sinks.list("out")))
    got = sorted(run_local(p).lists["out"], key=lambda r: (r.start, r.key))
    counts = defaultdict(int)
    for x in [x for x in range(100) for _ in range(2) if x % 3] + list(range(100)):
        counts[(x // 50 * 50, "even" if x % 2 == 0 else "odd")] += 1
    assert got == [WindowResult(start, start + 50, key, n) for (start, key), n in sorted(counts.items())]


def test_sort_and_distinct_restore_what_they_had_not_emitted():
    from jetmq.pipeline.processors.aggregation import DistinctProcessor
    from jetmq.pipeline.processors.stateful import SortProcessor

    sort = started(SortProcessor(None, False), capacity=2, name="sort")
    list(feed(sort, [5, 3, 9, 1]))
    sort.complete()
    emitted = sort.outbox.drain_bucket(0)  # two of four out before the snapshot
    entries = snapshot(sort)
    assert {key for key, _ in entries} == {"sort"}  # the vertex name: its all-to-one processor
    rest = restore(started(SortProcessor(None, False), name="sort"), entries)
    assert emitted + run(rest, "complete") == [1, 3, 5, 9]
    distinct = started(DistinctProcessor(lambda x: x % 3))
    assert list(feed(distinct, [1, 2, 4])) == [1, 2]
    again = restore(started(DistinctProcessor(lambda x: x % 3)), snapshot(distinct))
    assert list(feed(again, [7, 3])) == [3]


def test_events_behind_their_own_streams_watermark_are_dropped_before_the_session_edge():
    # Given the local stage in front of a session window's distributed edge, with a small outbox
    stage = started(DropLateEventsProcessor(), capacity=2)
    # When events come, then a watermark, then events on both sides of it
    before = list(feed(stage, [(5, "a"), (1, "b"), (9, "c")]))
    assert run(stage, "try_process_watermark", Watermark(7)) == [Watermark(7)]
    after = list(feed(stage, [(6, "late"), (7, "d"), (3, "late"), (12, "e")]))
    # Then everything before the watermark passes, and after it only events at or beyond it
    assert before == [(5, "a"), (1, "b"), (9, "c")]
    assert after == [(7, "d"), (12, "e")]
    assert stage.context.metrics["lateEventsDropped"] == 2
