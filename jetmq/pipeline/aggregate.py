"""Aggregate operations: Jet's ``AggregateOperation`` and ``AggregateOperations``.

An aggregate operation folds items into an accumulator in two stages, as Jet
runs it: each processor accumulates its own items, then the partial
accumulators are combined across the partitioned edge and finished. Sliding
windows also deduct the accumulator of a frame that left the window, when the
operation can.

Every built-in operation is made of module-level functions and
``functools.partial``, so it pickles with the standard ``pickle`` whenever the
user's functions do (and always with cloudpickle); accumulators pickle too,
as snapshots save them.
"""

from __future__ import annotations

import heapq
import math
import operator
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

Acc = Any
"""An accumulator: whatever ``create`` returns (an int, a tuple, a list, ...)."""


def _identity(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class AggregateOperation:
    """The primitives of one aggregation. The engine always uses the returned value.

    - ``create() -> acc``: a new, empty accumulator.
    - ``accumulate(acc, item) -> acc``: fold one item in. It may update ``acc`` in
      place and return it, or return a new value (so ints and tuples work as
      accumulators).
    - ``combine(acc, other) -> acc``: fold another accumulator in; ``other`` must
      not be changed, and may be used again afterwards.
    - ``deduct(acc, other) -> acc`` or None when the operation cannot undo a
      ``combine``; when given, ``deduct(combine(a, b), b)`` equals ``a``.
    - ``export(acc) -> result``: the result so far, for rolling and early
      results; it must leave ``acc`` unchanged and share nothing mutable with it.
      The default, identity, is right only for immutable accumulators.
    - ``finish(acc) -> result``: the final result; ``acc`` is not used afterwards,
      so it may hand out ``acc`` itself. None means ``export``.
    """

    create: Callable[[], Acc]
    accumulate: Callable[[Acc, Any], Acc]
    combine: Callable[[Acc, Acc], Acc]
    deduct: Callable[[Acc, Acc], Acc] | None = None
    export: Callable[[Acc], Any] = _identity
    finish: Callable[[Acc], Any] | None = None

    def __post_init__(self) -> None:
        if self.finish is None:
            object.__setattr__(self, "finish", self.export)
        for field in ("create", "accumulate", "combine", "export", "finish"):
            if not callable(getattr(self, field)):
                raise TypeError(f"AggregateOperation.{field} must be callable, got {getattr(self, field)!r}")
        if self.deduct is not None and not callable(self.deduct):
            raise TypeError(f"AggregateOperation.deduct must be callable or None, got {self.deduct!r}")

    def and_then(self, fn: Callable[[Any], Any]) -> AggregateOperation:
        """A copy whose export and finish results are passed through ``fn``."""
        return replace(self, export=partial(_compose, fn, self.export),
                       finish=partial(_compose, fn, self.finish))

    def with_identity_finish(self) -> AggregateOperation:
        """A copy whose ``finish`` returns the accumulator itself (stage one of two)."""
        return replace(self, finish=_identity)

    def with_combining_accumulate(self, get_acc_fn: Callable[[Any], Acc] = _identity) -> AggregateOperation:
        """A copy that accumulates items carrying accumulators (stage two of two).

        Its ``accumulate(acc, item)`` is ``combine(acc, get_acc_fn(item))``.
        """
        return replace(self, accumulate=partial(_combine_accumulate, self.combine, get_acc_fn))


def _compose(outer: Callable[[Any], Any], inner: Callable[[Any], Any], value: Any) -> Any:
    return outer(inner(value))


def _combine_accumulate(combine: Callable[[Acc, Acc], Acc], get_acc_fn: Callable[[Any], Acc],
                        acc: Acc, item: Any) -> Acc:
    return combine(acc, get_acc_fn(item))


# ---- numbers: counting, summing, averaging (int or tuple accumulators) --------------------

def _zero() -> int:
    return 0


def _count_one(acc: int, _item: Any) -> int:
    return acc + 1


def _add_value(get_fn: Callable[[Any], Any], acc: Any, item: Any) -> Any:
    return acc + get_fn(item)


def _empty_count_and_sum() -> tuple[int, int]:
    return (0, 0)


def _count_and_add(get_fn: Callable[[Any], Any], acc: tuple[int, Any], item: Any) -> tuple[int, Any]:
    return (acc[0] + 1, acc[1] + get_fn(item))


def _add_pairs(acc: tuple[int, Any], other: tuple[int, Any]) -> tuple[int, Any]:
    return (acc[0] + other[0], acc[1] + other[1])


def _subtract_pairs(acc: tuple[int, Any], other: tuple[int, Any]) -> tuple[int, Any]:
    return (acc[0] - other[0], acc[1] - other[1])


def _mean(acc: tuple[int, Any]) -> float:
    count, total = acc
    return total / count if count else math.nan


# ---- one item: min_by / max_by (accumulator () or (key, item), immutable) -----------------

def _empty_tuple() -> tuple:
    return ()


def _keep_best(key_fn: Callable[[Any], Any], better: Callable[[Any, Any], bool],
               acc: tuple, item: Any) -> tuple:
    key = key_fn(item)
    return (key, item) if not acc or better(key, acc[0]) else acc


def _combine_best(better: Callable[[Any, Any], bool], acc: tuple, other: tuple) -> tuple:
    return other if other and (not acc or better(other[0], acc[0])) else acc


def _held_item(acc: tuple) -> Any:
    return acc[1] if acc else None


# ---- collections: to_list, to_set (mutable accumulators, copied on export) ----------------

def _append(acc: list, item: Any) -> list:
    acc.append(item)
    return acc


def _extend(acc: list, other: list) -> list:
    acc.extend(other)
    return acc


def _add_to_set(acc: set, item: Hashable) -> set:
    acc.add(item)
    return acc


def _update_set(acc: set, other: set) -> set:
    acc.update(other)
    return acc


# ---- top_n / bottom_n (a min-heap of the n best entries) ----------------------------------

@dataclass(frozen=True, slots=True)
class _Ranked:
    """A heap entry ordered by its key only, so items need not be comparable."""

    key: Any
    item: Any

    def __lt__(self, other: _Ranked) -> bool:
        return self.key < other.key


@dataclass(frozen=True, slots=True)
class _Reversed:
    """A key that sorts in the opposite order of the key it wraps."""

    key: Any

    def __lt__(self, other: _Reversed) -> bool:
        return other.key < self.key


def _reversed_key(key_fn: Callable[[Any], Any], item: Any) -> _Reversed:
    return _Reversed(key_fn(item))


def _offer(n: int, heap: list[_Ranked], entry: _Ranked) -> None:
    """Keep ``entry`` if it is among the n greatest so far; one equal to the least is dropped."""
    if len(heap) < n:
        heapq.heappush(heap, entry)
    elif heap[0] < entry:
        heapq.heapreplace(heap, entry)


def _top_accumulate(n: int, key_fn: Callable[[Any], Any], heap: list[_Ranked], item: Any) -> list[_Ranked]:
    _offer(n, heap, _Ranked(key_fn(item), item))
    return heap


def _top_combine(n: int, heap: list[_Ranked], other: list[_Ranked]) -> list[_Ranked]:
    for entry in other:
        _offer(n, heap, entry)
    return heap


def _top_items(heap: list[_Ranked]) -> list[Any]:
    return [entry.item for entry in sorted(heap, reverse=True)]


# ---- composites: all_of, mapping, filtering, reducing -------------------------------------

def _create_all(ops: tuple[AggregateOperation, ...]) -> list[Acc]:
    return [op.create() for op in ops]


def _accumulate_all(ops: tuple[AggregateOperation, ...], acc: list[Acc], item: Any) -> list[Acc]:
    for i, op in enumerate(ops):
        acc[i] = op.accumulate(acc[i], item)
    return acc


def _combine_all(ops: tuple[AggregateOperation, ...], acc: list[Acc], other: list[Acc]) -> list[Acc]:
    for i, op in enumerate(ops):
        acc[i] = op.combine(acc[i], other[i])
    return acc


def _deduct_all(ops: tuple[AggregateOperation, ...], acc: list[Acc], other: list[Acc]) -> list[Acc]:
    for i, op in enumerate(ops):
        acc[i] = op.deduct(acc[i], other[i])
    return acc


def _export_all(ops: tuple[AggregateOperation, ...], acc: list[Acc]) -> tuple:
    return tuple(op.export(a) for op, a in zip(ops, acc))


def _finish_all(ops: tuple[AggregateOperation, ...], acc: list[Acc]) -> tuple:
    return tuple(op.finish(a) for op, a in zip(ops, acc))


def _accumulate_mapped(fn: Callable[[Any], Any], accumulate: Callable[[Acc, Any], Acc],
                       acc: Acc, item: Any) -> Acc:
    mapped = fn(item)
    return acc if mapped is None else accumulate(acc, mapped)


def _accumulate_if(predicate: Callable[[Any], bool], accumulate: Callable[[Acc, Any], Acc],
                   acc: Acc, item: Any) -> Acc:
    return accumulate(acc, item) if predicate(item) else acc


def _constant(value: Any) -> Any:
    return value


def _reduce_accumulate(get_fn: Callable[[Any], Any], combine_fn: Callable[[Any, Any], Any],
                       acc: Any, item: Any) -> Any:
    return combine_fn(acc, get_fn(item))


class AggregateOperations:
    """Factories of the common aggregate operations, as Jet's ``AggregateOperations``.

    Results match the same computation done in one pass over all items,
    whatever the split into partial accumulators.
    """

    @staticmethod
    def counting() -> AggregateOperation:
        """The number of items (0 for none). Supports deduct."""
        return AggregateOperation(_zero, _count_one, operator.add, operator.sub)

    @staticmethod
    def summing(get_fn: Callable[[Any], Any] = _identity) -> AggregateOperation:
        """The sum of ``get_fn(item)`` (int or float; 0 for no items). Supports deduct.

        Jet's summingLong and summingDouble in one: Python numbers need no choice.
        """
        return AggregateOperation(_zero, partial(_add_value, get_fn), operator.add, operator.sub)

    @staticmethod
    def averaging(get_fn: Callable[[Any], Any] = _identity) -> AggregateOperation:
        """The mean of ``get_fn(item)`` as a float; NaN for no items, as Jet's
        averagingLong/averagingDouble. Supports deduct."""
        return AggregateOperation(_empty_count_and_sum, partial(_count_and_add, get_fn),
                                  _add_pairs, _subtract_pairs, _mean)

    @staticmethod
    def min_by(key_fn: Callable[[Any], Any] = _identity) -> AggregateOperation:
        """The item with the least ``key_fn(item)``; None for no items.

        On equal keys the item accumulated first wins, and ``combine`` keeps
        the left accumulator's item, as Jet's minBy. No deduct.
        """
        return AggregateOperation(_empty_tuple, partial(_keep_best, key_fn, operator.lt),
                                  partial(_combine_best, operator.lt), None, _held_item)

    @staticmethod
    def max_by(key_fn: Callable[[Any], Any] = _identity) -> AggregateOperation:
        """The item with the greatest ``key_fn(item)``; None for no items.

        Ties as in ``min_by``: the first accumulated, then the left one, wins. No deduct.
        """
        return AggregateOperation(_empty_tuple, partial(_keep_best, key_fn, operator.gt),
                                  partial(_combine_best, operator.gt), None, _held_item)

    @staticmethod
    def to_list() -> AggregateOperation:
        """All items in a list, in no particular order across partitions. No deduct."""
        return AggregateOperation(list, _append, _extend, None, list, _identity)

    @staticmethod
    def to_set() -> AggregateOperation:
        """All distinct items in a set; items must be hashable. No deduct."""
        return AggregateOperation(set, _add_to_set, _update_set, None, set, _identity)

    @staticmethod
    def top_n(n: int, key_fn: Callable[[Any], Any] = _identity) -> AggregateOperation:
        """The ``n`` items with the greatest keys, greatest first, as Jet's topN.

        Which of several items with the key at the cut-off are kept, and their
        order among themselves, is unspecified, as in Jet. No deduct.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"top_n/bottom_n need n >= 1, got {n!r}")
        return AggregateOperation(list, partial(_top_accumulate, n, key_fn),
                                  partial(_top_combine, n), None, _top_items)

    @staticmethod
    def bottom_n(n: int, key_fn: Callable[[Any], Any] = _identity) -> AggregateOperation:
        """The ``n`` items with the least keys, least first, as Jet's bottomN. No deduct."""
        return AggregateOperations.top_n(n, partial(_reversed_key, key_fn))

    @staticmethod
    def all_of(*ops: AggregateOperation) -> AggregateOperation:
        """Several operations over the same items at once; the result is a tuple
        of their results in order. Supports deduct when all of them do."""
        if not ops or not all(isinstance(op, AggregateOperation) for op in ops):
            raise TypeError(f"all_of needs one or more AggregateOperation, got {ops!r}")
        deduct = partial(_deduct_all, ops) if all(op.deduct is not None for op in ops) else None
        return AggregateOperation(partial(_create_all, ops), partial(_accumulate_all, ops),
                                  partial(_combine_all, ops), deduct,
                                  partial(_export_all, ops), partial(_finish_all, ops))

    @staticmethod
    def mapping(fn: Callable[[Any], Any], op: AggregateOperation) -> AggregateOperation:
        """``op`` over ``fn(item)``; an item that ``fn`` maps to None is skipped, as in Jet."""
        return replace(op, accumulate=partial(_accumulate_mapped, fn, op.accumulate))

    @staticmethod
    def filtering(predicate: Callable[[Any], bool], op: AggregateOperation) -> AggregateOperation:
        """``op`` over the items for which ``predicate`` is true."""
        return replace(op, accumulate=partial(_accumulate_if, predicate, op.accumulate))

    @staticmethod
    def reducing(identity: Any, get_fn: Callable[[Any], Any], combine_fn: Callable[[Any, Any], Any],
                 deduct_fn: Callable[[Any, Any], Any] | None = None) -> AggregateOperation:
        """Fold ``get_fn(item)`` values with ``combine_fn`` starting from ``identity``.

        ``combine_fn`` must be associative and commutative and return a new value
        without changing its arguments; ``deduct_fn``, if given, undoes it.
        """
        return AggregateOperation(partial(_constant, identity),
                                  partial(_reduce_accumulate, get_fn, combine_fn), combine_fn, deduct_fn)
