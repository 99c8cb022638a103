"""Aggregate operations against plain-Python references, in one and several partial accumulators."""

import copy
import math
import operator
import pickle
import random

import pytest

from jetmq.pipeline.aggregate import AggregateOperation, AggregateOperations as ops

pytestmark = pytest.mark.timeout(30)

SEED = 20200307
CHUNK_COUNTS = [1, 2, 5]
N_ITEMS = 400

_rng = random.Random(SEED)
INTS = [_rng.randint(-1000, 1000) for _ in range(N_ITEMS)]
FLOATS = [_rng.uniform(-1e3, 1e3) for _ in range(N_ITEMS)]
# (key, label) pairs with many equal keys, to check which item wins a tie
KEYED = [(_rng.randint(0, 15), f"item{i}") for i in range(N_ITEMS)]
MIXED = [_rng.choice([None, "a", "b", 1, 2, (1, "a"), (), frozenset({3})]) for _ in range(N_ITEMS)]


# module-level functions, so the operations pickle with the standard pickle
def first(pair):
    return pair[0]


def double(x):
    return 2 * x


def half_unless_multiple_of_three(x):
    return None if x % 3 == 0 else x / 2


def is_even(x):
    return x % 2 == 0


def mean_or_nan(values):
    return sum(values) / len(values) if values else math.nan


def run(op: AggregateOperation, items: list, chunks: int):
    """Accumulate ``chunks`` contiguous parts separately, combine them left to right, finish."""
    size = math.ceil(len(items) / chunks) if items else 0
    accs = []
    for c in range(chunks):
        acc = op.create()
        for item in items[c * size:(c + 1) * size]:
            acc = op.accumulate(acc, item)
        accs.append(acc)
    total = accs[0]
    for acc in accs[1:]:
        total = op.combine(total, acc)
    return op.finish(total)


def accumulate_all(op: AggregateOperation, items: list):
    acc = op.create()
    for item in items:
        acc = op.accumulate(acc, item)
    return acc


# name -> (operation factory, reference over all items, items)
CASES = {
    "counting": (ops.counting, len, INTS),
    "summing ints": (lambda: ops.summing(double), lambda xs: sum(map(double, xs)), INTS),
    "averaging ints": (lambda: ops.averaging(double), lambda xs: mean_or_nan([2 * x for x in xs]), INTS),
    "min_by": (lambda: ops.min_by(first), lambda xs: min(xs, key=first, default=None), KEYED),
    "max_by": (lambda: ops.max_by(first), lambda xs: max(xs, key=first, default=None), KEYED),
    "min_by identity": (ops.min_by, lambda xs: min(xs, default=None), INTS),
    "to_list": (ops.to_list, list, INTS),
    "to_set mixed": (ops.to_set, set, MIXED),
    "top_n": (lambda: ops.top_n(7), lambda xs: sorted(xs, reverse=True)[:7], INTS),
    "bottom_n": (lambda: ops.bottom_n(7), lambda xs: sorted(xs)[:7], INTS),
    "top_n more than items": (lambda: ops.top_n(N_ITEMS + 5), lambda xs: sorted(xs, reverse=True), INTS),
    "all_of": (
        lambda: ops.all_of(ops.counting(), ops.summing(), ops.max_by(), ops.to_list()),
        lambda xs: (len(xs), sum(xs), max(xs, default=None), list(xs)),
        INTS,
    ),
    "mapping skips None": (
        lambda: ops.mapping(half_unless_multiple_of_three, ops.to_list()),
        lambda xs: [x / 2 for x in xs if x % 3 != 0],
        INTS,
    ),
    "filtering": (lambda: ops.filtering(is_even, ops.counting()), lambda xs: sum(map(is_even, xs)), INTS),
    "reducing product": (
        lambda: ops.reducing(1, abs, operator.mul),
        lambda xs: math.prod(abs(x) for x in xs),
        INTS[:40],
    ),
    "and_then": (lambda: ops.counting().and_then(str), lambda xs: str(len(xs)), INTS),
}


@pytest.mark.parametrize("chunks", CHUNK_COUNTS)
@pytest.mark.parametrize("name", CASES)
def test_result_matches_reference_however_the_input_is_split(name, chunks):
    factory, reference, items = CASES[name]
    assert run(factory(), items, chunks) == reference(items)


@pytest.mark.parametrize("chunks", CHUNK_COUNTS)
@pytest.mark.parametrize("name", CASES)
def test_empty_input_matches_reference(name, chunks):
    factory, reference, _ = CASES[name]
    result, expected = run(factory(), [], chunks), reference([])
    assert result == expected or (math.isnan(result) and math.isnan(expected))


@pytest.mark.parametrize("chunks", CHUNK_COUNTS)
def test_summing_and_averaging_floats_match_reference(chunks):
    assert run(ops.summing(), FLOATS, chunks) == pytest.approx(sum(FLOATS))
    assert run(ops.averaging(), FLOATS, chunks) == pytest.approx(sum(FLOATS) / len(FLOATS))


def test_averaging_no_items_is_nan_as_in_jet():
    assert math.isnan(run(ops.averaging(), [], 1))


@pytest.mark.parametrize("n", [1, 3, 50])
@pytest.mark.parametrize("chunks", CHUNK_COUNTS)
def test_top_and_bottom_n_by_key_with_equal_keys(n, chunks):
    # Which of the items tied at the cut-off are kept is unspecified (as in Jet): check keys
    top = run(ops.top_n(n, first), KEYED, chunks)
    bottom = run(ops.bottom_n(n, first), KEYED, chunks)
    assert [first(x) for x in top] == sorted(map(first, KEYED), reverse=True)[:n]
    assert [first(x) for x in bottom] == sorted(map(first, KEYED))[:n]
    assert len(set(top)) == len(set(bottom)) == n
    assert set(top) <= set(KEYED) and set(bottom) <= set(KEYED)


def test_min_and_max_by_with_equal_keys_keep_the_left_accumulators_item():
    left = accumulate_all(ops.max_by(first), [(5, "left")])
    right = accumulate_all(ops.max_by(first), [(5, "right")])
    assert ops.max_by(first).finish(ops.max_by(first).combine(left, right)) == (5, "left")
    assert ops.min_by(first).finish(ops.min_by(first).combine(left, right)) == (5, "left")


def test_min_by_item_none_is_a_value_not_an_empty_accumulator():
    assert run(ops.max_by(lambda x: 0 if x is None else 1), [None], 1) is None
    assert run(ops.min_by(lambda x: 0 if x is None else 1), [None, "x"], 2) is None
    assert run(ops.max_by(lambda x: 0 if x is None else 1), [None, "x"], 2) == "x"


DEDUCTING = {
    "counting": (ops.counting, INTS),
    "summing": (ops.summing, INTS),
    "averaging": (ops.averaging, INTS),
    "all_of": (lambda: ops.all_of(ops.counting(), ops.summing(double), ops.averaging()), INTS),
    "reducing": (lambda: ops.reducing(0, double, operator.add, operator.sub), INTS),
    "mapping": (lambda: ops.mapping(double, ops.summing()), INTS),
}


@pytest.mark.parametrize("name", DEDUCTING)
def test_deduct_undoes_combine(name):
    factory, items = DEDUCTING[name]
    op = factory()
    a = accumulate_all(op, items[:150])
    b = accumulate_all(op, items[150:])
    a_before = copy.deepcopy(a)
    combined = op.combine(a, b)
    assert op.deduct(combined, b) == a_before
    assert op.finish(op.deduct(op.combine(accumulate_all(op, items[:150]), b), b)) == op.finish(a_before)


def test_averaging_floats_deduct_undoes_combine_up_to_rounding():
    op = ops.averaging()
    a, b = accumulate_all(op, FLOATS[:100]), accumulate_all(op, FLOATS[100:])
    assert op.export(op.deduct(op.combine(a, b), b)) == pytest.approx(op.export(a))


@pytest.mark.parametrize(
    "op",
    [ops.min_by(), ops.max_by(), ops.to_list(), ops.to_set(), ops.top_n(3), ops.bottom_n(3),
     ops.all_of(ops.counting(), ops.to_list())],
)
def test_operations_jet_cannot_deduct_have_no_deduct(op):
    assert op.deduct is None


@pytest.mark.parametrize(
    "factory",
    [ops.counting, ops.averaging, ops.to_list, ops.to_set, lambda: ops.top_n(5), lambda: ops.max_by(),
     lambda: ops.all_of(ops.to_list(), ops.to_set(), ops.top_n(3))],
)
def test_export_leaves_the_accumulator_unchanged_and_unshared(factory):
    # Given an accumulator part-way through
    op = factory()
    acc = accumulate_all(op, INTS[:100])
    before = copy.deepcopy(acc)

    # When a result is exported and that result is then changed
    exported = op.export(acc)
    for part in exported if isinstance(exported, tuple) else (exported,):
        if isinstance(part, (list, set)):
            part.clear()

    # Then the accumulator is as it was and carries on to the right result
    assert acc == before
    for item in INTS[100:]:
        acc = op.accumulate(acc, item)
    assert op.finish(acc) == run(factory(), INTS, 1)


def test_and_then_maps_both_export_and_finish():
    op = ops.summing().and_then(double)
    acc = accumulate_all(op, [1, 2, 3])
    assert op.export(acc) == 12
    assert op.finish(acc) == 12


def test_two_stage_aggregation_with_identity_finish_and_combining_accumulate():
    # Given stage one emitting (key, accumulator) pairs from three processors
    stage_one = ops.averaging().with_identity_finish()
    parts = (INTS[:10], INTS[10:50], [])
    partials = [("k", stage_one.finish(accumulate_all(stage_one, part))) for part in parts]

    # When stage two accumulates those pairs
    stage_two = ops.averaging().with_combining_accumulate(operator.itemgetter(1))
    result = stage_two.finish(accumulate_all(stage_two, partials))

    # Then the result is the average over all the items
    assert result == pytest.approx(sum(INTS[:50]) / 50)


PICKLING = {
    "counting": (ops.counting(), INTS),
    "summing": (ops.summing(double), INTS),
    "averaging": (ops.averaging(double), INTS),
    "min_by": (ops.min_by(first), KEYED),
    "max_by": (ops.max_by(first), KEYED),
    "to_list": (ops.to_list(), INTS),
    "to_set": (ops.to_set(), MIXED),
    "top_n": (ops.top_n(4, first), KEYED),
    "bottom_n": (ops.bottom_n(4, first), KEYED),
    "all_of": (ops.all_of(ops.counting(), ops.max_by(first)), KEYED),
    "mapping": (ops.mapping(first, ops.to_set()), KEYED),
    "filtering": (ops.filtering(is_even, ops.counting()), INTS),
    "reducing": (ops.reducing(0, double, operator.add, operator.sub), INTS),
    "and_then": (ops.counting().and_then(double), INTS),
}


@pytest.mark.parametrize("name", PICKLING)
def test_operation_and_its_accumulator_survive_pickling(name):
    # Given an operation pickled and restored, as a job plan is shipped to members
    op, items = PICKLING[name]
    restored = pickle.loads(pickle.dumps(op))

    # When its accumulator is pickled half-way, as a snapshot saves it
    acc = accumulate_all(restored, items[:200])
    acc = pickle.loads(pickle.dumps(acc))
    for item in items[200:]:
        acc = restored.accumulate(acc, item)

    # Then the result equals the original operation's
    assert restored.finish(acc) == run(op, items, 1)


@pytest.mark.parametrize("field", ["create", "accumulate", "combine", "export", "finish"])
def test_non_callable_primitive_is_refused_naming_the_field(field):
    primitives = dict(create=list, accumulate=operator.add, combine=operator.add)
    primitives[field] = 42
    with pytest.raises(TypeError, match=f"AggregateOperation.{field}"):
        AggregateOperation(**primitives)


def test_non_callable_deduct_is_refused():
    with pytest.raises(TypeError, match="deduct"):
        AggregateOperation(list, operator.add, operator.add, deduct="nope")


def test_finish_defaults_to_export():
    op = AggregateOperation(int, operator.add, operator.add, export=str)
    assert op.finish is op.export


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
def test_top_n_needs_a_positive_count(n):
    with pytest.raises(ValueError, match="n >= 1"):
        ops.top_n(n)


def test_all_of_needs_operations():
    with pytest.raises(TypeError):
        ops.all_of()
    with pytest.raises(TypeError):
        ops.all_of(ops.counting(), len)
