"""keys.specialize: a key function replaced by a C getter must compute the same key."""
import functools
import operator
from collections import namedtuple

import pytest

from jetmq.core.keys import IDENTITY, specialize

pytestmark = pytest.mark.timeout(30)

Event = namedtuple("Event", "user amount")


def first(item):
    """A docstring is no code."""
    return item[0]


def by_user(event: Event) -> str:
    return event.user


@pytest.mark.parametrize("fn,kind,items", [
    (first, operator.itemgetter, [(1, 2), "ab", [None]]),
    (lambda t: t[-1], operator.itemgetter, [(1, 2), "xyz"]),
    (lambda d: d["k"], operator.itemgetter, [{"k": 1}, {"k": (2, 3)}]),
    (lambda t: t[(0, 1)], operator.itemgetter, [{(0, 1): "pair"}]),
    (by_user, operator.attrgetter, [Event("ann", 1), Event(None, 2)]),
])
def test_one_expression_functions_become_equal_getters(fn, kind, items):
    getter = specialize(fn)
    assert type(getter) is kind
    assert [getter(item) for item in items] == [fn(item) for item in items]


def test_the_identity_function_is_recognised():
    assert specialize(lambda item: item) is IDENTITY


@pytest.mark.parametrize("fn,item", [
    (first, ()),  # IndexError
    (lambda d: d["k"], {}),  # KeyError
    (by_user, 5),  # AttributeError
    (first, 5),  # TypeError
])
def test_a_getter_raises_what_the_function_raises(fn, item):
    with pytest.raises(Exception) as by_fn:
        fn(item)
    with pytest.raises(type(by_fn.value)) as by_getter:
        specialize(fn)(item)
    assert str(by_getter.value) == str(by_fn.value)


def _closure():
    index = 0
    return lambda t: t[index]


def with_default(t, i=0):
    return t[i]


def two_steps(t):
    return t[0][1]


def printing(t):
    print(t)
    return t[0]


def star(*args):
    return args[0]


def generator(t):
    yield t[0]


class Key:
    def __call__(self, t):
        return t[0]


@pytest.mark.parametrize("fn", [
    _closure(), with_default, two_steps, printing, star, generator, Key(), operator.itemgetter(0), len,
    functools.partial(operator.getitem, 0), lambda t: t[1:2], lambda t: t.upper(), lambda t: -t, lambda t: 0,
], ids=lambda fn: getattr(fn, "__name__", type(fn).__name__))
def test_other_functions_are_called_as_written(fn):
    assert specialize(fn) is fn
