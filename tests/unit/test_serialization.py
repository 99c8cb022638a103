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
    assert serialization.loads(serialization.dumps(items)) == items


def test_a_cyclic_item_round_trips():
    cyclic = [1]
    cyclic.append(cyclic)
    (back,) = serialization.loads(serialization.dumps([cyclic]))
    assert back[0] == 1 and back[1] is back


def test_what_plain_pickle_refuses_goes_through_cloudpickle():
    items = [lambda x: x * 3]
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(items)
    (fn,) = serialization.loads(serialization.dumps(items))
    assert fn(2) == 6


def test_shared_structure_is_written_once():
    # the review found that pickling without the memo wrote x = (x, x) nested 22 deep as
    # 33.5 MB: batches keep the memo
    x = ("leaf",)
    for _ in range(22):
        x = (x, x)
    data = serialization.dumps([x])
    assert len(data) < 1000 and serialization.loads(data) == [x]


def test_an_item_that_fails_to_pickle_raises_its_error():
    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("no pickling me")

    with pytest.raises(RuntimeError, match="no pickling me"):
        serialization.dumps([Unpicklable()])
