"""Serialization of items, keys and values between processes."""
import pickle

import pytest

from jetmq import serialization

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("items", [
    [],
    [(i, i) for i in range(1000)],
    ["word", None, 1.5, b"\x00", ("nested", ("tuple", frozenset({1}))), {"a": [1, 2]}],
], ids=["empty", "tuples", "mixed"])
def test_items_round_trip(items):
    assert serialization.loads(serialization.dumps_items(items)) == items


def test_a_cyclic_item_goes_through_the_memo_pickler():
    cyclic = [1]
    cyclic.append(cyclic)
    (back,) = serialization.loads(serialization.dumps_items([cyclic]))
    assert back[0] == 1 and back[1] is back


def test_what_plain_pickle_refuses_goes_through_cloudpickle():
    items = [lambda x: x * 3]
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(items)
    (fn,) = serialization.loads(serialization.dumps_items(items))
    assert fn(2) == 6


def test_items_are_written_one_by_one_without_sharing():
    shared = ["state"]
    a, b = serialization.loads(serialization.dumps_items([shared, shared]))
    assert a == b == ["state"] and a is not b  # as Jet, which serializes each item alone


def test_an_item_that_fails_to_pickle_raises_its_error():
    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("no pickling me")

    with pytest.raises(RuntimeError, match="no pickling me"):
        serialization.dumps_items([Unpicklable()])
