"""Serialization of user objects: items, keys, values, and jobs' DAGs.

Plain pickle (protocol 5) is fast and is tried first; cloudpickle handles what plain
pickle refuses: lambdas, and instances of classes defined in a user's script, which
exist on a member only because cloudpickle shipped them by value.
"""
from __future__ import annotations

import pickle

import cloudpickle

PROTOCOL = 5


def dumps(obj) -> bytes:
    try:
        return pickle.dumps(obj, protocol=PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError):
        return cloudpickle.dumps(obj, protocol=PROTOCOL)


def loads(data: bytes):
    return pickle.loads(data)


def dumps_code(obj) -> bytes:
    """Serialize user code (a DAG with its functions) by value, with cloudpickle."""
    return cloudpickle.dumps(obj, protocol=PROTOCOL)
