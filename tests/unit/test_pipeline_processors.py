"""The pipeline's processors on their own: backpressure, sources, sinks, join, stateful."""
import logging
import random

import pytest

from jetmq.core import Inbox, Outbox, ProcessorContext
from jetmq.pipeline import Sinks, SinkBuilder, SourceBuilder, Sources
from jetmq.pipeline.aggregate import AggregateOperations as ops
from jetmq.pipeline.processors import (
    AccumulateProcessor,
    FusedTransformProcessor,
    HashJoinProcessor,
    compile_chain,
)
from jetmq.pipeline.processors import sources as source_processors
from jetmq.pipeline.processors.aggregation import is_counting
from jetmq.pipeline.processors.fused import run_chain
from jetmq.pipeline.processors.join import PRIMARY_ORDINAL, TABLE_ORDINAL
from jetmq.pipeline.processors.sinks import SINK_BATCH_SIZE

pytestmark = pytest.mark.timeout(30)


class FakeServices:
    """Named maps and lists in memory, recording each call."""

    def __init__(self):
        self.maps, self.lists, self.calls = {}, {}, []

    def map_put_all(self, name, entries):
        entries = list(entries)
        for key, value in entries:
            self.maps.setdefault(name, {})[key] = value
        self.calls.append(("map_put_all", name, len(entries)))

    def list_add_all(self, name, items):
        self.lists.setdefault(name, []).extend(items)
        self.calls.append(("list_add_all", name, len(items)))

    def read_map(self, name):
        return dict(self.maps.get(name, {}))

    def read_list(self, name):
        return list(self.lists.get(name, []))


def context(name="v", index=0, total=1, local_index=0, local_parallelism=1, services=None):
    return ProcessorContext(name, global_index=index, total_parallelism=total, local_index=local_index,
                            local_parallelism=local_parallelism, services=services)


def emit_all(processor, outbox, max_calls=100_000):
    """Call complete() until it returns True, draining the outbox after each call."""
    out = []
    for _ in range(max_calls):
        done = processor.complete()
        out += outbox.drain_bucket(0)
        if done:
            return out
    raise AssertionError("complete() never returned True")


# ---- fused chains --------------------------------------------------------------------------

def test_chain_steps_follow_jet_semantics():
    steps = [("map", lambda x: None if x == 3 else x), ("filter", lambda x: x != 5),
             ("flat_map", lambda x: None if x == 7 else [x] * (x % 3)), ("map", lambda x: x * 10)]
    assert run_chain(steps, range(10)) == [10, 20, 20, 40, 80, 80]


def test_peek_logs_each_item_and_passes_it_on():
    logged = []
    chain = compile_chain([("peek", lambda x: f"<{x}>"), ("map", str)], log=logged.append)
    assert list(chain([1, 2])) == ["1", "2"]
    assert logged == ["<1>", "<2>"]


def test_peek_step_logs_through_the_processor_logger_at_info(caplog):
    processor = FusedTransformProcessor([("peek", lambda x: f"saw {x}")])
    processor.init(Outbox(1), context())
    inbox = Inbox()
    inbox.add_batch([1, 2])
    with caplog.at_level(logging.INFO, logger="jetmq.processor"):
        processor.process(0, inbox)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [(logging.INFO, "saw 1"), (logging.INFO, "saw 2")]
    assert processor.outbox.drain_bucket(0) == [1, 2]


@pytest.mark.parametrize("capacity", [1, 2, 3, 7, 1024])
@pytest.mark.parametrize("drain_probability", [1.0, 0.5])
def test_flat_map_chain_resumes_mid_item_under_backpressure(capacity, drain_probability):
    # Given a chain whose flat_map gives 0..9 outputs per item, and an outbox that
    # is small and drained only now and then
    rng = random.Random(capacity)
    fanout = lambda x: range(x, x + (x % 10))  # noqa: E731
    steps = [("map", lambda x: x * 3), ("flat_map", fanout), ("filter", lambda y: y % 4), ("map", str)]
    items = list(range(400))
    expected_per_item = [run_chain(steps, [x]) for x in items]
    processor = FusedTransformProcessor(steps)
    outbox = Outbox(1, capacity)
    processor.init(outbox, context())
    inbox, out, fed = Inbox(), [], 0
    # When items arrive in batches of random sizes and process() is called repeatedly
    while fed < len(items) or inbox:
        if not inbox:
            size = rng.randint(1, 50)
            inbox.add_batch(items[fed:fed + size])
            fed = min(fed + size, len(items))
        processor.process(0, inbox)
        if rng.random() < drain_probability or outbox.room() == 0:
            out += outbox.drain_bucket(0)
        # Then an item leaves the inbox only once all its outputs are in the outbox or out
        removed = fed - len(inbox)
        assert len(out) + outbox.bucket_size(0) >= sum(map(len, expected_per_item[:removed]))
    out += outbox.drain_bucket(0)
    # And nothing is lost or emitted twice, in order
    assert out == [y for outputs in expected_per_item for y in outputs]


def test_map_filter_chain_never_takes_more_than_the_outbox_holds():
    processor = FusedTransformProcessor([("map", lambda x: x + 1), ("filter", lambda x: x % 2)])
    outbox = Outbox(1, 4)
    processor.init(outbox, context())
    inbox = Inbox()
    inbox.add_batch(list(range(10)))
    processor.process(0, inbox)
    assert len(inbox) == 6 and outbox.drain_bucket(0) == [1, 3]
    processor.process(0, inbox)
    processor.process(0, inbox)  # the outbox has room again: takes the rest
    assert not inbox and outbox.drain_bucket(0) == [5, 7, 9]


def test_chain_emits_to_every_output_ordinal():
    processor = FusedTransformProcessor([("flat_map", lambda x: [x, x])])
    outbox = Outbox(2, 8)
    processor.init(outbox, context())
    inbox = Inbox()
    inbox.add_batch([1, 2])
    processor.process(0, inbox)
    assert outbox.drain_bucket(0) == outbox.drain_bucket(1) == [1, 1, 2, 2]


# ---- aggregation ---------------------------------------------------------------------------

def test_counting_is_recognised_exactly():
    # (identity key functions: tests/unit/test_keys.py)
    assert is_counting(ops.counting())
    assert not is_counting(ops.summing())
    assert not is_counting(ops.filtering(bool, ops.counting()))


@pytest.mark.parametrize("key_fn", [lambda w: w, str.upper], ids=["identity", "str.upper"])
def test_accumulate_emits_one_pair_per_key_under_backpressure(key_fn):
    processor = AccumulateProcessor(key_fn, ops.counting(), pre_steps=(("flat_map", str.split),))
    outbox = Outbox(1, 2)
    processor.init(outbox, context())
    inbox = Inbox()
    inbox.add_batch(["a b a", "c a", ""])
    processor.process(0, inbox)
    assert not inbox
    assert dict(emit_all(processor, outbox)) == {key_fn("a"): 3, key_fn("b"): 1, key_fn("c"): 1}


# ---- hash join -----------------------------------------------------------------------------

def test_hash_join_is_left_outer_with_one_output_per_match():
    processor = HashJoinProcessor(lambda x: x % 3, lambda x, r: None if r == "drop" else (x, r))
    outbox = Outbox(1, 2)
    processor.init(outbox, context())
    table_inbox, inbox = Inbox(), Inbox()
    table_inbox.add_batch([{0: ["zero", "nil"], 1: ["drop"]}])
    processor.process(TABLE_ORDINAL, table_inbox)
    inbox.add_batch([0, 1, 2, 3])
    out = []
    while inbox:
        processor.process(PRIMARY_ORDINAL, inbox)
        out += outbox.drain_bucket(0)
    assert out == [(0, "zero"), (0, "nil"), (2, None), (3, "zero"), (3, "nil")]


def test_hash_join_merges_tables_without_changing_the_shared_ones():
    processor = HashJoinProcessor(lambda x: x, lambda x, r: r)
    processor.init(Outbox(1), context())
    first, second = {1: ["a"]}, {1: ["b"], 2: ["c"]}
    inbox = Inbox()
    inbox.add_batch([first, second])
    processor.process(TABLE_ORDINAL, inbox)
    assert first == {1: ["a"]} and second == {1: ["b"], 2: ["c"]}
    inbox.add_batch([1, 2])
    processor.process(PRIMARY_ORDINAL, inbox)
    assert processor.outbox.drain_bucket(0) == ["a", "b", "c"]


# ---- map_stateful --------------------------------------------------------------------------



# ---- sources -------------------------------------------------------------------------------

def make_files(directory, contents):
    directory.mkdir(exist_ok=True)
    for name, text in contents.items():
        (directory / name).write_bytes(text.encode())
    return directory


def read_files(directory, index=0, total=1, glob="*", shared=True, capacity=3):
    processor = Sources.files(str(directory), glob=glob, shared_file_system=shared).supplier()
    outbox = Outbox(1, capacity)
    processor.init(outbox, context(index=index, total=total))
    return emit_all(processor, outbox)


def test_files_source_emits_lines_across_chunk_boundaries(tmp_path, monkeypatch):
    monkeypatch.setattr(source_processors, "FILE_CHUNK_CHARS", 5)
    make_files(tmp_path, {"a.txt": "first line\nsecond\r\n\nlast without newline",
                          "b.txt": "", "c.txt": "é ü\n"})
    assert read_files(tmp_path) == ["first line", "second", "", "last without newline", "é ü"]


def test_files_source_divides_sorted_files_among_processors(tmp_path):
    make_files(tmp_path, {f"f{i}": f"{i}\n" for i in range(5)})
    (tmp_path / "subdir").mkdir()
    shares = [read_files(tmp_path, index=g, total=2) for g in range(2)]
    assert shares == [["0", "2", "4"], ["1", "3"]]


def test_files_source_without_shared_file_system_reads_all_local_files(tmp_path):
    make_files(tmp_path, {f"f{i}": f"{i}\n" for i in range(3)})
    assert read_files(tmp_path, index=1, total=2, shared=False) == ["0", "1", "2"]


def test_files_source_matches_the_glob(tmp_path):
    make_files(tmp_path, {"a.txt": "a\n", "b.csv": "b\n", ".c.txt": "c\n"})
    assert read_files(tmp_path, glob="*.txt") == ["c", "a"]


def test_files_source_fails_on_a_missing_directory(tmp_path):
    processor = Sources.files(str(tmp_path / "nope")).supplier()
    with pytest.raises(FileNotFoundError, match="nope"):
        processor.init(Outbox(1), context())


def test_items_source_emits_everything_from_global_index_0():
    source = Sources.items(x for x in range(7))  # materialized at once
    shares = []
    for g in range(3):
        processor, outbox = source.supplier(), Outbox(1, 2)
        processor.init(outbox, context(index=g, total=3))
        shares.append(emit_all(processor, outbox))
    assert shares == [list(range(7)), [], []]


def test_items_source_resumes_from_its_saved_position():
    from jetmq.core.inbox_outbox import Inbox
    source = Sources.items(list(range(10)))
    first, outbox = source.supplier(), Outbox(1, 4)
    first.init(outbox, context(index=0, total=2))
    assert not first.complete()  # 4 emitted
    assert first.save_to_snapshot()
    saved = outbox.drain_snapshot_bucket()
    emitted = outbox.drain_bucket(0)
    assert emitted == [0, 1, 2, 3] and first.state_after_complete() == saved
    second, outbox = source.supplier(), Outbox(1, 100)
    second.init(outbox, context(index=0, total=3))  # restored on another member count
    inbox = Inbox()
    inbox.add_batch(saved)
    second.restore_from_snapshot(inbox)
    assert emit_all(second, outbox) == [4, 5, 6, 7, 8, 9]
    assert second.state_after_complete() == [(saved[0][0], 10)]


@pytest.mark.parametrize("source, expected", [
    (Sources.list("l"), ["x", None, ("t", 1)]),
    (Sources.map("m"), [("k", 1), (None, 2)]),
])
def test_list_and_map_sources_are_read_by_one_processor(source, expected):
    services = FakeServices()
    services.lists["l"] = ["x", None, ("t", 1)]
    services.maps["m"] = {"k": 1, None: 2}
    outputs = []
    for g in range(2):
        processor, outbox = source.supplier(), Outbox(1, 1)
        processor.init(outbox, context(index=g, total=2, services=services))
        outputs.append(emit_all(processor, outbox))
    assert outputs == [expected, []]


def test_named_sources_and_sinks_need_services():
    for named in (Sources.list("l").supplier(), Sinks.map("m").supplier()):
        with pytest.raises(RuntimeError, match="needs a cluster's services"):
            named.init(Outbox(1), context())


class Counter:
    def __init__(self, limit):
        self.next, self.limit, self.destroyed, self.calls = 0, limit, False, 0


def fill_slowly(state, buffer):
    """Adds nothing on every third call (nothing ready), else up to 4 items."""
    state.calls += 1
    if state.calls % 3 == 0:
        return
    for _ in range(4):
        if state.next == state.limit:
            buffer.close()
            return
        buffer.add(state.next)
        state.next += 1


def test_source_builder_runs_one_instance_unless_distributed():
    created = []

    def create(ctx):
        created.append(ctx.global_index)
        return Counter(10)

    source = SourceBuilder.batch("count", create).fill_buffer_fn(fill_slowly).destroy_fn(
        lambda s: setattr(s, "destroyed", True)).build()
    outputs = []
    for g in range(2):
        processor, outbox = source.supplier(), Outbox(1, 3)
        processor.init(outbox, context(index=g, total=2))
        outputs.append(emit_all(processor, outbox))
        processor.close()
    assert outputs == [list(range(10)), []]
    assert created == [0]


def test_distributed_source_builder_runs_everywhere_and_is_destroyed():
    states = []

    def create(ctx):
        states.append(Counter(3))
        return states[-1]

    source = (SourceBuilder.batch("count", create).fill_buffer_fn(fill_slowly)
              .destroy_fn(lambda s: setattr(s, "destroyed", True)).distributed(1).build())
    for g in range(2):
        processor, outbox = source.supplier(), Outbox(1, 2)
        processor.init(outbox, context(index=g, total=2))
        assert emit_all(processor, outbox) == [0, 1, 2]
        processor.close()
    assert [s.destroyed for s in states] == [True, True]


def test_source_builder_needs_a_fill_function():
    with pytest.raises(ValueError, match="fill_buffer_fn"):
        SourceBuilder.batch("s", lambda ctx: None).build()


# ---- sinks ---------------------------------------------------------------------------------

def feed(processor, batches):
    inbox = Inbox()
    for batch in batches:
        inbox.add_batch(list(batch))
        processor.process(0, inbox)
        assert not inbox
    assert processor.complete()


def test_map_sink_sends_in_batches_and_the_rest_at_the_end():
    services = FakeServices()
    processor = Sinks.map("m").supplier()
    processor.init(Outbox(0), context(services=services))
    entries = [(i, str(i)) for i in range(2 * SINK_BATCH_SIZE + 10)]
    feed(processor, [entries[i:i + 500] for i in range(0, len(entries), 500)])
    assert services.maps["m"] == dict(entries)
    assert [n for _, _, n in services.calls] == [SINK_BATCH_SIZE, SINK_BATCH_SIZE, 10]


def test_map_sink_names_an_item_that_is_not_a_pair():
    processor = Sinks.map("m").supplier()
    processor.init(Outbox(0), context(services=FakeServices()))
    with pytest.raises(TypeError, match=r"takes \(key, value\) tuples, got 'oops'"):
        feed(processor, [[("k", 1), "oops"]])


def test_list_sink_appends_in_order():
    services = FakeServices()
    processor = Sinks.list("l").supplier()
    processor.init(Outbox(0), context(services=services))
    feed(processor, [range(1500), range(3)])
    assert services.lists["l"] == [*range(1500), *range(3)]


def test_files_sink_writes_one_file_per_processor(tmp_path):
    target = tmp_path / "new" / "dir"
    for g, items in enumerate([[1, "a"], [None]]):
        processor = Sinks.files(str(target)).supplier()
        processor.init(Outbox(0), context(index=g, total=2))
        feed(processor, [items])
    assert (target / "0").read_text() == "1\na\n"
    assert (target / "1").read_text() == "None\n"


def test_logger_sink_logs_each_item(caplog):
    processor = Sinks.logger(lambda x: f"item={x}").supplier()
    processor.init(Outbox(0), context())
    with caplog.at_level(logging.INFO, logger="jetmq.processor"):
        feed(processor, [[1, 2]])
    assert [r.getMessage() for r in caplog.records] == ["item=1", "item=2"]


def test_noop_sink_discards():
    processor = Sinks.noop().supplier()
    processor.init(Outbox(0), context())
    feed(processor, [[1, 2, 3]])


def test_sink_builder_calls_its_functions_in_order():
    calls = []
    sink = (SinkBuilder.sink_builder("mine", lambda ctx: calls.append(("create", ctx.global_index)) or calls)
            .receive_fn(lambda state, item: state.append(("receive", item)))
            .flush_fn(lambda state: state.append(("flush",)))
            .destroy_fn(lambda state: state.append(("destroy",)))
            .preferred_local_parallelism(2).build())
    assert sink.local_parallelism == 2 and sink.name == "mine"
    processor = sink.supplier()
    processor.init(Outbox(0), context(index=1, total=2))
    feed(processor, [[1, 2], [3]])
    processor.close()
    assert calls == [("create", 1), ("receive", 1), ("receive", 2), ("flush",), ("receive", 3), ("flush",),
                     ("flush",), ("destroy",)]


@pytest.mark.parametrize("stop_after_calls", [1, 2, 3, 5, 8])
def test_files_source_resumes_after_its_saved_lines_on_any_parallelism(tmp_path, monkeypatch, stop_after_calls):
    from jetmq.core.inbox_outbox import Inbox
    monkeypatch.setattr(source_processors, "FILE_CHUNK_CHARS", 5)  # chunk boundaries inside lines
    files = {"a.txt": "a1\na2\na3\na4\n", "b.txt": "b1\nb22\nb333\nb4444", "c.txt": "", "d.txt": "d1\n"}
    make_files(tmp_path, files)
    everything = sorted(line for text in files.values() for line in text.split("\n") if line)
    source = Sources.files(str(tmp_path))
    # two processors read part of their files, then save their state
    saved, emitted = [], []
    for g in range(2):
        processor, outbox = source.supplier(), Outbox(1, 2)
        processor.init(outbox, context(index=g, total=2))
        for _ in range(stop_after_calls):
            if processor.complete():
                break
        emitted += outbox.drain_bucket(0)
        while not processor.save_to_snapshot():
            pass
        saved += outbox.drain_snapshot_bucket()
    # three processors restored from that state emit exactly the rest
    rest = []
    for g in range(3):
        processor, outbox = source.supplier(), Outbox(1, 2)
        processor.init(outbox, context(index=g, total=3))
        inbox = Inbox()
        inbox.add_batch(list(saved))
        processor.restore_from_snapshot(inbox)
        rest += emit_all(processor, outbox)
    assert sorted(emitted + rest) == everything
