"""stable_hash is the same in every process; partitions spread and assign evenly."""

import dataclasses
import json
import os
import random
import subprocess
import sys
from collections import Counter, namedtuple
from decimal import Decimal
from enum import Enum, IntEnum, StrEnum
from fractions import Fraction
from pathlib import Path

import pytest

from jetmq.core.partition import (
    PARTITION_COUNT,
    assign_partitions,
    local_processor_table,
    owner_table,
    partition_of,
    processor_partitions,
    stable_hash,
)

pytestmark = pytest.mark.timeout(30)

REPO_ROOT = Path(__file__).resolve().parents[2]

# Evaluated in child interpreters too, so it must be a Python expression.
MIXED_KEYS = """[
    "", "word", "héllo wörld", "日本語", "emoji \\U0001F600", "lone \\ud800 surrogate",
    0, 1, -1, -2, 42, 2**31, -(2**63), 2**100, -(2**100),
    0.0, -0.0, 1.5, -2.25, 1e300, float("inf"), float("-inf"), float("nan"),
    None, True, False, b"", b"bytes\\x00\\xff",
    (), ("a", 1), ("a", (1, ("b", None)), 2.5), frozenset({1, "x", (2, 3)}),
]"""

CHILD = f"""
import json
from jetmq.core.partition import stable_hash
print(json.dumps([stable_hash(k) for k in {MIXED_KEYS}]))
"""


def hashes_in_child(hash_seed: str) -> list[int]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    return json.loads(done.stdout)


def test_stable_hash_is_equal_in_interpreters_with_different_hash_seeds():
    first, second = hashes_in_child("1"), hashes_in_child("12345")
    assert first == second
    assert first == [stable_hash(k) for k in eval(MIXED_KEYS)]
    assert all(0 <= h < 2**32 for h in first)


def test_keys_that_compare_equal_hash_equal():
    class Color(IntEnum):
        RED = 1

    class Name(StrEnum):
        ADA = "ada"

    class OldStyleName(str, Enum):  # noqa: UP042 - str() gives "OldStyleName.ADA", yet == "ada"
        ADA = "ada"

    class OwnHashInt(int):
        def __hash__(self):
            return 7

    Point = namedtuple("Point", "x y")
    equal_groups = [
        [1, 1.0, True, Fraction(1), Decimal(1), Color.RED, OwnHashInt(1)],
        [0, 0.0, -0.0, False],
        [2**100, float(2**100)],
        ["ada", Name.ADA, OldStyleName.ADA],
        [b"raw", bytearray(b"raw")],
        [(1, "a"), (1.0, "a"), Point(1, "a")],
        [frozenset({1, 2, 3}), frozenset({3, 2, 1.0})],
    ]
    for group in equal_groups:
        assert len({stable_hash(k) for k in group}) == 1, group


def test_dataclass_keys_hash_by_class_and_fields():
    @dataclasses.dataclass(frozen=True)
    class Key:
        user: str
        shard: int

    assert stable_hash(Key("ada", 1)) == stable_hash(Key("ada", 1.0))
    assert stable_hash(Key("ada", 1)) != stable_hash(Key("ada", 2))


def test_tuple_hash_depends_on_order_and_frozenset_hash_does_not():
    assert stable_hash(("a", "b")) != stable_hash(("b", "a"))
    assert stable_hash(frozenset("ab")) == stable_hash(frozenset("ba"))


def test_when_key_cannot_be_pickled_then_stable_hash_raises_type_error_naming_its_type():
    class Local:
        pass

    with pytest.raises(TypeError, match="cannot compute a stable hash of key .* of type .*Local"):
        stable_hash(Local())


def test_random_strings_spread_within_30_percent_of_the_mean_over_all_partitions():
    rng = random.Random(20240101)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    keys = {"".join(rng.choices(alphabet, k=rng.randint(8, 16))) for _ in range(100_000)}
    counts = Counter(partition_of(k) for k in keys)
    mean = len(keys) / PARTITION_COUNT
    assert len(counts) == PARTITION_COUNT
    assert all(0.7 * mean <= c <= 1.3 * mean for c in counts.values()), (
        min(counts.values()),
        max(counts.values()),
    )


@pytest.mark.parametrize(
    "keys", [range(100_000), range(0, 100_000 * 271, 271), [k << 32 for k in range(100_000)]]
)
def test_integer_keys_in_regular_patterns_spread_evenly(keys):
    counts = Counter(partition_of(k) for k in keys)
    mean = len(keys) / PARTITION_COUNT
    assert len(counts) == PARTITION_COUNT
    assert all(0.7 * mean <= c <= 1.3 * mean for c in counts.values())


@pytest.mark.parametrize("member_count", range(1, 8))
def test_assign_partitions_is_even_complete_and_deterministic(member_count):
    members = [f"member-{i}" for i in range(member_count)]
    assignment = assign_partitions(members)
    sizes = [len(assignment[m]) for m in members]
    assert max(sizes) - min(sizes) <= 1
    assert sorted(p for parts in assignment.values() for p in parts) == list(range(PARTITION_COUNT))
    assert assignment == assign_partitions(list(members))
    table = owner_table(members)
    assert len(table) == PARTITION_COUNT
    assert all(p in assignment[members[table[p]]] for p in range(PARTITION_COUNT))


def test_when_members_are_empty_or_repeated_then_assignment_is_refused():
    with pytest.raises(ValueError, match="empty list of members"):
        assign_partitions([])
    with pytest.raises(ValueError, match="must be distinct"):
        owner_table(["a", "a"])


def test_local_processor_table_deals_owned_partitions_round_robin():
    owned = assign_partitions(["a", "b"])["b"]  # 1, 3, 5, ...
    table = local_processor_table(owned, 3)
    assert [table[p] for p in owned[:6]] == [0, 1, 2, 0, 1, 2]
    assert all(table[p] == -1 for p in range(PARTITION_COUNT) if p not in owned)
    assert local_processor_table(range(PARTITION_COUNT), 4) == [
        p % 4 for p in range(PARTITION_COUNT)
    ]


def test_processor_partitions_match_the_local_processor_table():
    owned = assign_partitions(["a", "b", "c"])["c"]
    table = local_processor_table(owned, 2)
    parts = [processor_partitions(owned, 2, i) for i in range(2)]
    assert parts[0] | parts[1] == set(owned) and not parts[0] & parts[1]
    assert all(table[p] == i for i in range(2) for p in parts[i])
    with pytest.raises(ValueError, match="outside"):
        processor_partitions(owned, 2, 2)


def test_partition_of_agrees_with_stable_hash_on_its_fast_paths():
    keys = [0, 1, -1, 2**61, 2**100, -(2**70), 10**6 + 7, "", "a", "é", "\ud800", 1.0, True, None, ("a", 1)]
    keys += list(range(-300, 300)) + [f"w{i}" for i in range(300)]
    assert [partition_of(k) for k in keys] == [stable_hash(k) % PARTITION_COUNT for k in keys]
