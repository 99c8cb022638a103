"""Whole pipelines run in-process on one member (the engine's Execution, no fork, no
zmq), checked against the same computation in plain Python."""
import math
from collections import Counter, defaultdict

import pytest

from jetmq.core.partition import owner_table
from jetmq.member.engine.execution import Execution, ExecutionFailed, Plan
from jetmq.pipeline import Pipeline, Sinks, Sources
from jetmq.pipeline.aggregate import AggregateOperations as ops

pytestmark = pytest.mark.timeout(30)

MAX_STEPS = 1_000_000


class FakeServices:
    def __init__(self):
        self.maps, self.lists = defaultdict(dict), defaultdict(list)

    def map_put_all(self, name, entries):
        self.maps[name].update(entries)

    def list_add_all(self, name, items):
        self.lists[name].extend(items)

    def read_map(self, name):
        return dict(self.maps[name])

    def read_list(self, name):
        return list(self.lists[name])


def run_local(pipeline: Pipeline, services: FakeServices | None = None) -> FakeServices:
    services = services or FakeServices()
    execution = Execution(Plan(1, 1, 0, 1, tuple(owner_table([0])), services=services), pipeline.to_dag())
    execution.init()
    try:
        for _ in range(MAX_STEPS):
            if execution.is_done:
                return services
            execution.step()
        raise AssertionError(f"the execution did not finish: {execution.tasklets}")
    finally:
        execution.close()


KEYS = ["a", 1, (1, "x"), None, "b", 2.5]
RECORDS = [(KEYS[i % len(KEYS)], i) for i in range(200)]
VALUE = lambda record: record[1]  # noqa: E731


def grouped(records):
    groups = defaultdict(list)
    for key, value in records:
        groups[key].append((key, value))
    return groups


OPERATIONS = {
    "counting": (ops.counting(), len),
    "summing": (ops.summing(VALUE), lambda rs: sum(map(VALUE, rs))),
    "averaging": (ops.averaging(VALUE), lambda rs: sum(map(VALUE, rs)) / len(rs) if rs else math.nan),
    "min_by": (ops.min_by(VALUE), lambda rs: min(rs, key=VALUE, default=None)),
    "max_by": (ops.max_by(VALUE), lambda rs: max(rs, key=VALUE, default=None)),
    "to_list": (ops.to_list(), lambda rs: sorted(rs, key=repr)),
    "to_set": (ops.to_set(), set),
    "top_n": (ops.top_n(3, VALUE), lambda rs: sorted(rs, key=VALUE, reverse=True)[:3]),
    "all_of": (ops.all_of(ops.counting(), ops.summing(VALUE)), lambda rs: (len(rs), sum(map(VALUE, rs)))),
}


def normalized(name, result):
    return sorted(result, key=repr) if name == "to_list" else result


def same(a, b):
    return (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize("records", [RECORDS, []], ids=["records", "empty"])
def test_every_aggregate_operation_grouped_and_ungrouped_matches_plain_python(records):
    # Given one pipeline with a grouped and an ungrouped branch per operation
    p = Pipeline()
    source = p.read_from(Sources.items(records))
    for name, (op, _) in OPERATIONS.items():
        source.grouping_key(lambda r: r[0]).aggregate(op).write_to(Sinks.map(f"by-key-{name}"))
        source.aggregate(op).write_to(Sinks.list(f"all-{name}"))
    # When it runs
    services = run_local(p)
    # Then each result is the plain-Python one
    for name, (_, reference) in OPERATIONS.items():
        by_key = {k: normalized(name, v) for k, v in services.maps[f"by-key-{name}"].items()}
        assert by_key == {k: reference(rs) for k, rs in grouped(records).items()}, name
        [result] = services.lists[f"all-{name}"]
        assert same(normalized(name, result), reference(list(records))), name


def test_stateless_stages_branches_and_merge():
    p = Pipeline()
    numbers = p.read_from(Sources.items(range(100)))
    evens = numbers.filter(lambda x: x % 2 == 0).map(lambda x: None if x == 50 else x)
    words = p.read_from(Sources.items(["a b", "", "c"])).flat_map(str.split).peek()
    evens.merge(words).write_to(Sinks.list("merged"))
    numbers.map(str).write_to(Sinks.list("strings"))
    services = run_local(p)
    assert sorted(services.lists["merged"], key=str) == sorted(
        [x for x in range(0, 100, 2) if x != 50] + ["a", "b", "c"], key=str)
    assert sorted(services.lists["strings"]) == sorted(map(str, range(100)))


def test_word_count_from_files(tmp_path):
    lines = ["The cat", "the DOG and the cat", "", "dog"]
    for i in range(3):
        (tmp_path / f"part-{i}").write_text("\n".join(lines) + "\n")
    p = Pipeline()
    (p.read_from(Sources.files(str(tmp_path))).flat_map(lambda line: line.lower().split())
      .grouping_key(lambda word: word).aggregate(ops.counting()).write_to(Sinks.map("counts")))
    services = run_local(p)
    assert services.maps["counts"] == dict(Counter(w for line in lines * 3 for w in line.lower().split()))


def test_distinct_sort_hash_join_and_map_stateful():
    p = Pipeline()
    items = p.read_from(Sources.items([3, 1, 2, 3, 0, 1, 5]))
    items.distinct().write_to(Sinks.list("distinct"))
    items.grouping_key(lambda x: x % 2).distinct().write_to(Sinks.list("one-per-key"))
    items.sort(reverse=True).write_to(Sinks.list("sorted"))
    names = p.read_from(Sources.items([(1, "one"), (3, "three"), (3, "drei")]))
    items.hash_join(names, lambda x: x, lambda n: n[0], lambda x, n: (x, n and n[1])).write_to(Sinks.list("joined"))
    items.map_stateful(lambda: [0], lambda s, x: s.__setitem__(0, s[0] + x) or s[0]).write_to(Sinks.list("sums"))
    services = run_local(p)
    lists = services.lists
    assert sorted(lists["distinct"]) == [0, 1, 2, 3, 5]
    assert sorted(x % 2 for x in lists["one-per-key"]) == [0, 1]
    assert lists["sorted"] == [5, 3, 3, 2, 1, 1, 0]
    assert sorted(lists["joined"], key=repr) == sorted(
        [(3, "three"), (3, "drei"), (1, "one"), (2, None), (3, "three"), (3, "drei"), (0, None), (1, "one"),
         (5, None)], key=repr)
    assert lists["sums"] == [3, 4, 6, 9, 9, 10, 15]


def test_list_and_map_round_trip_through_sources_and_sinks():
    services = FakeServices()
    services.lists["in"] = [1, 2, 3]
    services.maps["in"] = {"a": 1, ("t", 2): None}
    p = Pipeline()
    p.read_from(Sources.list("in")).map(lambda x: (x, x * x)).write_to(Sinks.map("squares"))
    p.read_from(Sources.map("in")).write_to(Sinks.list("entries"))
    run_local(p, services)
    assert services.maps["squares"] == {1: 1, 2: 4, 3: 9}
    assert sorted(services.lists["entries"], key=repr) == sorted([("a", 1), (("t", 2), None)], key=repr)


def test_a_raising_user_function_fails_the_execution_naming_the_vertex():
    p = Pipeline()
    p.read_from(Sources.items([1, 0])).map(lambda x: 1 / x).write_to(Sinks.noop())
    with pytest.raises(ExecutionFailed, match=r"map#0.*ZeroDivisionError"):
        run_local(p)


def test_a_raising_step_run_by_the_accumulate_vertex_names_that_vertex():
    p = Pipeline()
    (p.read_from(Sources.items(["a b", None])).flat_map(str.split)
      .grouping_key(lambda w: w).aggregate(ops.counting()).write_to(Sinks.map("counts")))
    with pytest.raises(ExecutionFailed, match=r"flat_map-accumulate-counting#0.*TypeError"):
        run_local(p)
