"""Batch pipelines on real clusters of 1 and of 3 members, checked against plain Python.

Two clusters for the whole module (one per size, each reused by every test); each
test runs few jobs, each with many branches, to keep the file fast.
"""
import importlib.util
import itertools
import math
import os
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

import jetmq
from jetmq.errors import JobFailedError
from jetmq.pipeline import Pipeline, SinkBuilder, Sinks, SourceBuilder, Sources
from jetmq.pipeline.aggregate import AggregateOperations as ops

pytestmark = [pytest.mark.timeout(120), pytest.mark.integration]

JOB_TIMEOUT_S = 60
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "word-count.py"

_names = itertools.count()


def unique(prefix: str) -> str:
    """A map or list name no other test uses."""
    return f"{prefix}-{next(_names)}"


@pytest.fixture(scope="module", params=[1, 3], ids=["1-member", "3-members"])
def jet(request):
    with jetmq.Cluster(members=request.param) as cluster:
        yield cluster


def run(jet, pipeline: Pipeline) -> None:
    jet.new_job(pipeline).join(timeout=JOB_TIMEOUT_S)


# ---- aggregation ---------------------------------------------------------------------------

KEYS = ["a", 1, (1, "x"), None, "b", 2.5, ("nested", (2, None))]
RECORDS = [(KEYS[i % len(KEYS)], i) for i in range(3000)]
VALUE = lambda record: record[1]  # noqa: E731

OPERATIONS = {
    "counting": (ops.counting(), len),
    "summing": (ops.summing(VALUE), lambda rs: sum(map(VALUE, rs))),
    "averaging": (ops.averaging(VALUE), lambda rs: sum(map(VALUE, rs)) / len(rs) if rs else math.nan),
    "min_by": (ops.min_by(VALUE), lambda rs: min(rs, key=VALUE, default=None)),
    "max_by": (ops.max_by(VALUE), lambda rs: max(rs, key=VALUE, default=None)),
    "to_list": (ops.to_list(), lambda rs: sorted(rs, key=repr)),
    "to_set": (ops.to_set(), set),
    "top_n": (ops.top_n(4, VALUE), lambda rs: sorted(rs, key=VALUE, reverse=True)[:4]),
    "all_of": (ops.all_of(ops.counting(), ops.summing(VALUE), ops.max_by(VALUE)),
               lambda rs: (len(rs), sum(map(VALUE, rs)), max(rs, key=VALUE, default=None))),
}


def _normalized(name, result):
    return sorted(result, key=repr) if name == "to_list" else result


def _same(a, b):
    return (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize("records", [RECORDS, []], ids=["mixed-keys", "empty"])
def test_every_aggregate_operation_matches_plain_python(jet, records):
    # Given one job with a grouped and an ungrouped branch per aggregate operation
    p = Pipeline()
    source = p.read_from(Sources.items(records))
    names = {}
    for name, (op, _) in OPERATIONS.items():
        names[name] = unique(f"by-key-{name}"), unique(f"all-{name}")
        source.grouping_key(lambda r: r[0]).aggregate(op).write_to(Sinks.map(names[name][0]))
        source.aggregate(op).write_to(Sinks.list(names[name][1]))
    # When it runs
    run(jet, p)
    # Then every result equals the plain-Python one: per key (str, int, tuple, None
    # keys alike), and over all items (one result, also for no items)
    groups = defaultdict(list)
    for record in records:
        groups[record[0]].append(record)
    for name, (_, reference) in OPERATIONS.items():
        by_key = {k: _normalized(name, v) for k, v in jet.get_map(names[name][0]).items()}
        assert by_key == {k: reference(rs) for k, rs in groups.items()}, name
        results = jet.get_list(names[name][1])
        assert len(results) == 1, (name, results)
        assert _same(_normalized(name, results[0]), reference(records)), name


# ---- stateless stages, merge, rebalance, sinks ---------------------------------------------

def test_stateless_stages_merge_and_rebalance(jet):
    # Given branches through every stateless stage
    out = {key: unique(key) for key in ("chain", "merged", "rebalanced", "by-key", "peeked")}
    p = Pipeline()
    numbers = p.read_from(Sources.items(range(5000)))
    (numbers.map(lambda x: None if x % 7 == 0 else x).filter(lambda x: x % 2)
     .flat_map(lambda x: [x] * (x % 3)).write_to(Sinks.list(out["chain"])))
    words = p.read_from(Sources.items(["a b", "", "c d e"])).flat_map(str.split)
    numbers.filter(lambda x: x < 10).merge(words).write_to(Sinks.list(out["merged"]))
    numbers.rebalance().map(lambda x: -x).write_to(Sinks.list(out["rebalanced"]))
    numbers.rebalance(lambda x: x % 10).map(lambda x: (x, os.getpid())).write_to(Sinks.list(out["by-key"]))
    numbers.filter(lambda x: x < 3).peek(lambda x: f"peeked {x}").write_to(Sinks.list(out["peeked"]))
    numbers.write_to(Sinks.logger())
    numbers.write_to(Sinks.noop())
    # When it runs
    run(jet, p)
    # Then each branch has exactly the plain-Python items
    expected_chain = [x for x in range(5000) if x % 7 and x % 2 for _ in range(x % 3)]
    assert sorted(jet.get_list(out["chain"])) == expected_chain
    assert sorted(map(str, jet.get_list(out["merged"]))) == sorted([*map(str, range(10)), "a", "b", "c", "d", "e"])
    assert sorted(jet.get_list(out["rebalanced"])) == sorted(-x for x in range(5000))
    assert sorted(jet.get_list(out["peeked"])) == [0, 1, 2]
    # And a keyed rebalance sends each key's items to one member process
    pids_by_key = defaultdict(set)
    for x, pid in jet.get_list(out["by-key"]):
        pids_by_key[x % 10].add(pid)
    assert sorted(pids_by_key) == list(range(10)) and all(len(p) == 1 for p in pids_by_key.values())
    assert len({pid for pids in pids_by_key.values() for pid in pids}) == jet.member_count  # spread over all members


# ---- distinct, sort, hash join, map_stateful -----------------------------------------------

def test_distinct_sort_hash_join_and_map_stateful(jet):
    out = {key: unique(key) for key in ("distinct", "per-key", "sorted", "by-key", "joined", "stateful")}
    items = [(i * 7919) % 1000 for i in range(3000)] + [None, "x", (1, 2), None]
    numbers = [x for x in items if isinstance(x, int)]
    p = Pipeline()
    source = p.read_from(Sources.items(items))
    source.distinct().write_to(Sinks.list(out["distinct"]))
    source.grouping_key(lambda x: type(x).__name__).distinct().write_to(Sinks.list(out["per-key"]))
    ints = source.filter(lambda x: isinstance(x, int))
    ints.sort(reverse=True).write_to(Sinks.list(out["sorted"]))
    ints.sort(key=lambda x: (x % 10, x)).write_to(Sinks.list(out["by-key"]))
    names = p.read_from(Sources.items([(k, f"name-{k}") for k in range(0, 1000, 3)] + [(0, "zero")]))
    ints.hash_join(names, lambda x: x, lambda n: n[0],
                   lambda x, n: None if x >= 900 else (x, n and n[1])).write_to(Sinks.list(out["joined"]))
    (ints.grouping_key(lambda x: x % 5)
     .map_stateful(lambda: [0], lambda state, key, x: state.__setitem__(0, state[0] + 1) or (key, state[0]))
     .write_to(Sinks.list(out["stateful"])))
    run(jet, p)

    assert sorted(jet.get_list(out["distinct"]), key=repr) == sorted(set(items), key=repr)
    assert sorted(type(x).__name__ for x in jet.get_list(out["per-key"])) == ["NoneType", "int", "str", "tuple"]
    assert jet.get_list(out["sorted"]) == sorted(numbers, reverse=True)  # emitted in order by one processor
    assert jet.get_list(out["by-key"]) == sorted(numbers, key=lambda x: (x % 10, x))
    # hash_join: a left outer join, one output per match, None results dropped
    table = defaultdict(list)
    for k, name in [(k, f"name-{k}") for k in range(0, 1000, 3)] + [(0, "zero")]:
        table[k].append(name)
    expected = [(x, name) for x in numbers if x < 900 for name in table.get(x, [None])]
    assert sorted(jet.get_list(out["joined"]), key=repr) == sorted(expected, key=repr)
    # keyed map_stateful: one state per key, seeing all of the key's items
    counts = defaultdict(list)
    for key, n in jet.get_list(out["stateful"]):
        counts[key].append(n)
    expected_counts = Counter(x % 5 for x in numbers)
    assert {k: sorted(v) for k, v in counts.items()} == {k: list(range(1, n + 1)) for k, n in expected_counts.items()}


# ---- files, named structures, builders -----------------------------------------------------

def _load_example():
    spec = importlib.util.spec_from_file_location("word_count_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_word_count_example_and_files_sources(jet, tmp_path):
    # Given five text files
    books = tmp_path / "books"
    books.mkdir()
    texts = [f"The {i} cat\nsat on THE mat {i % 2}\n\nno newline at the end" for i in range(5)]
    for i, text in enumerate(texts):
        (books / f"book-{i}.txt").write_text(text)
    reference = Counter(w for text in texts for w in text.lower().split())
    # When the word-count example runs, and a branch reads every file on every member
    p = _load_example().build_pipeline(str(books))
    local = unique("local-counts")
    (p.read_from(Sources.files(str(books), shared_file_system=False)).flat_map(str.split)
     .grouping_key(str.lower).aggregate(ops.counting()).write_to(Sinks.map(local)))
    run(jet, p)
    # Then on a shared file system each file is counted once, and without one each
    # member reads all the files it sees (here the same ones)
    assert jet.get_map("counts") == dict(reference)
    assert jet.get_map(local) == {w: n * jet.member_count for w, n in reference.items()}


def test_named_list_and_map_round_trip(jet):
    written_list, written_map, read_list, read_map = (unique(n) for n in ("wl", "wm", "rl", "rm"))
    p = Pipeline()
    source = p.read_from(Sources.items(range(100)))
    source.write_to(Sinks.list(written_list))
    source.map(lambda x: (x, x * x)).write_to(Sinks.map(written_map))
    run(jet, p)
    p = Pipeline()
    p.read_from(Sources.list(written_list)).map(lambda x: x + 1).write_to(Sinks.list(read_list))
    p.read_from(Sources.map(written_map)).map(lambda e: (e[1], e[0])).write_to(Sinks.map(read_map))
    run(jet, p)
    assert sorted(jet.get_list(read_list)) == list(range(1, 101))
    assert jet.get_map(read_map) == {x * x: x for x in range(100)}


def _fill_range(state, buffer):
    """A SourceBuilder fill function: up to 100 items a call from state ['next', 'end']."""
    for _ in range(100):
        if state[0] >= state[1]:
            buffer.close()
            return
        buffer.add(state[0])
        state[0] += 1


def test_source_builder_sink_builder_and_files_sink(jet, tmp_path):
    # Given a single-instance source, a distributed one splitting 0..999 by global
    # index, a builder sink writing a file per processor, and the files sink
    single = SourceBuilder.batch("single", lambda ctx: [0, 500]).fill_buffer_fn(_fill_range).build()
    spread = (SourceBuilder.batch("spread", lambda ctx: [ctx.global_index * 1000 // ctx.total_parallelism,
                                                          (ctx.global_index + 1) * 1000 // ctx.total_parallelism])
              .fill_buffer_fn(_fill_range).distributed(1).build())
    target = tmp_path / "builder-out"

    def open_file(ctx):
        target.mkdir(exist_ok=True)
        return open(target / f"part-{ctx.global_index}", "w")

    sink = (SinkBuilder.sink_builder("file-per-processor", open_file)
            .receive_fn(lambda f, item: f.write(f"{item}\n")).flush_fn(lambda f: f.flush())
            .destroy_fn(lambda f: f.close()).build())
    files_dir = tmp_path / "files-out"
    single_list = unique("single")
    p = Pipeline()
    p.read_from(single).write_to(Sinks.list(single_list))
    spread_stage = p.read_from(spread)
    spread_stage.write_to(sink)
    spread_stage.map(lambda x: f"line {x}").write_to(Sinks.files(str(files_dir)))
    # When it runs
    run(jet, p)
    # Then the single source emitted its items once, the distributed one its shares
    assert sorted(jet.get_list(single_list)) == list(range(500))
    written = [int(line) for f in target.iterdir() for line in f.read_text().splitlines()]
    assert sorted(written) == list(range(1000))
    assert sorted(f.name for f in files_dir.iterdir()) == [str(g) for g in range(jet.member_count)]
    lines = [line for f in files_dir.iterdir() for line in f.read_text().splitlines()]
    assert sorted(lines) == sorted(f"line {x}" for x in range(1000))


# ---- failure -------------------------------------------------------------------------------

def test_a_raising_user_function_fails_the_job_and_the_next_job_runs(jet):
    # Given a job whose map divides by zero on one item
    p = Pipeline()
    p.read_from(Sources.items(range(-50, 50))).map(lambda x: 100 // x).write_to(Sinks.noop())
    # When it runs, then join raises naming the vertex and the exception
    with pytest.raises(JobFailedError) as failure:
        run(jet, p)
    assert re.search(r"\bmap#\d+\b.*ZeroDivisionError", str(failure.value)), str(failure.value)
    # And the next job on the same cluster runs normally
    out = unique("after-failure")
    p = Pipeline()
    p.read_from(Sources.items(range(10))).grouping_key(lambda x: x % 2).aggregate(ops.summing()).write_to(
        Sinks.map(out))
    run(jet, p)
    assert jet.get_map(out) == {0: 20, 1: 25}
