"""Key functions run as C getters instead of being called.

A partitioned edge (and a grouped aggregation) calls its key function once per
item, and the call of a Python function is most of the routing's cost: ~370
machine instructions per call here, against ~45 for an operator.itemgetter. Most
key functions are one expression on their argument: `lambda item: item[0]`,
`lambda event: event.user`, `lambda w: w`.
A function whose whole code is that, read off its bytecode, is replaced by the
getter that computes the same: `item[c]` is `itemgetter(c)(item)` and `item.name`
is `attrgetter(name)(item)` for every item, raising the same exceptions. Anything
else (closures, defaults, a second statement, other Python versions' bytecode) is
called as written.
"""
from __future__ import annotations

import dis
import inspect
import operator
import types
from typing import Callable

#: What specialize() returns for `lambda item: item`: the routing loop uses the item.
IDENTITY = None

_NOT_PLAIN = (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS | inspect.CO_GENERATOR | inspect.CO_COROUTINE
              | inspect.CO_ASYNC_GENERATOR | inspect.CO_ITERABLE_COROUTINE)
_NO_EFFECT = {"RESUME", "NOP", "CACHE"}


def specialize(key_fn: Callable) -> Callable | None:
    """A getter equal to ``key_fn``, IDENTITY for the identity function, else ``key_fn``."""
    if type(key_fn) is not types.FunctionType:
        return key_fn
    code = key_fn.__code__
    if code.co_argcount != 1 or code.co_kwonlyargcount or code.co_flags & _NOT_PLAIN:
        return key_fn
    argument = code.co_varnames[0]
    ops = [(i.opname, i.argval) for i in dis.get_instructions(code) if i.opname not in _NO_EFFECT]
    match ops:
        case [("LOAD_FAST", name), ("RETURN_VALUE", _)] if name == argument:
            return IDENTITY
        case [("LOAD_FAST", name), ("LOAD_CONST", index), ("BINARY_SUBSCR", _), ("RETURN_VALUE", _)] \
                if name == argument:
            return operator.itemgetter(index)
        case [("LOAD_FAST", name), ("LOAD_ATTR", attribute), ("RETURN_VALUE", _)] if name == argument:
            return operator.attrgetter(attribute)
    return key_fn
