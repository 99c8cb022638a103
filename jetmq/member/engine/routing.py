"""Routing of a processor's output batches to the queues of the consuming processors.

One OutboundEdge per output ordinal of a processor. Its targets are queues: of the
consuming processors on this member, and of the sender tasklets that carry a
distributed edge to each other member. A marker at the end of a batch goes to every
target, so each consumer sees every producer's watermarks, barriers and DONE.
"""
from __future__ import annotations

import operator
from typing import Callable, Sequence

from jetmq.core.dag import RoutingPolicy as Routing
from jetmq.core.markers import MARKER_TYPES
from jetmq.core.partition import _GOLDEN32, _MASK32, PARTITION_COUNT, partition_of
from jetmq.core.keys import specialize
from jetmq.core.snapshot import BroadcastKey
from jetmq.member.engine.queues import BatchQueue

try:  # the C twin of OutboundEdge._split_memoized_py, built by setup.py when a compiler is there
    from jetmq.member.engine._routing import split as _split_c
except ImportError:
    _split_c = None

#: Keys whose target is remembered; past this many the memo starts afresh.
KEY_MEMO_LIMIT = 1 << 16


class OutboundEdge:
    def __init__(self, targets: Sequence[BatchQueue], routing: Routing,
                 key_fn: Callable | None = None, partition_targets: Sequence[int] | None = None,
                 single_target: int = 0):
        if not targets:
            raise ValueError("an outbound edge needs at least one target queue")
        if routing is Routing.PARTITIONED and (key_fn is None or partition_targets is None):
            raise ValueError("a partitioned edge needs a key function and a partition table")
        if partition_targets is not None and len(partition_targets) != PARTITION_COUNT:
            raise ValueError(f"the partition table has {len(partition_targets)} entries, not {PARTITION_COUNT}")
        self.targets = list(targets)
        self.routing = routing
        self._key_fn = key_fn
        self._fast_key_fn = specialize(key_fn) if key_fn is not None else None  # None: the identity
        # -1 in the table: a partition no target handles (a receiver's table lists only
        # its member's partitions); the route marks it len(targets). The C loop raises
        # on an item of one; the Python loop gives it an extra output, checked per batch.
        self._route = None if partition_targets is None else \
            [t if t >= 0 else len(self.targets) for t in partition_targets]
        self._single = single_target
        self._next = 0
        self._memo: dict = {}

    def has_room(self) -> bool:
        """Whether a batch may be pushed now (unicast needs one target with room, the rest all)."""
        if self.routing is Routing.UNICAST:
            return any(t.has_room() for t in self.targets)
        if self.routing is Routing.ALL_TO_ONE:
            return self.targets[self._single].has_room()
        return all(t.has_room() for t in self.targets)

    def push(self, batch: list) -> None:
        """Route ``batch`` (checked with has_room first); a trailing marker goes to every target."""
        marker = None
        if batch and type(batch[-1]) in MARKER_TYPES:
            marker = batch[-1]
            batch = batch[:-1]
        targets = self.targets
        if self.routing is Routing.PARTITIONED and len(targets) > 1:
            self._push_partitioned(batch, marker)
            return
        if batch:
            if self.routing is Routing.BROADCAST:
                for target in targets:
                    target.put(batch)
            elif self.routing is Routing.ALL_TO_ONE or len(targets) == 1:
                targets[self._single if self.routing is Routing.ALL_TO_ONE else 0].put(batch)
            else:
                self._unicast_target().put(batch)
        if marker is not None:
            for target in targets:
                target.put([marker])

    def _unicast_target(self) -> BatchQueue:
        targets = self.targets
        for _ in range(len(targets)):
            target = targets[self._next % len(targets)]
            self._next += 1
            if target.has_room():
                return target
        return targets[self._next % len(targets)]  # none has room: overshoot by one batch

    def _push_partitioned(self, batch: list, marker) -> None:
        outputs = self._split_memoized(batch)
        for target, output in zip(self.targets, outputs):
            if marker is not None:
                output.append(marker)
            if output:
                target.put(output)

    def _split_memoized(self, batch: list) -> list[list]:
        """Items by target: the hot loop of every shuffle, in C when it was built."""
        if _split_c is None:
            return self._split_memoized_py(batch)
        return _split_c(batch, self._fast_key_fn, self._route, len(self.targets), self._memo,
                        KEY_MEMO_LIMIT, partition_of)

    def _split_memoized_py(self, batch: list) -> list[list]:
        """Items by target, in Python. It inlines partition_of's int path (kept equal
        to it by tests) and remembers the targets of the first KEY_MEMO_LIMIT other
        keys (a hit saves hashing a str or tuple; an unhashable key is not remembered)."""
        outputs: list[list] = [[] for _ in range(len(self.targets) + 1)]
        appends = [output.append for output in outputs]
        key_fn = self._key_fn if self._fast_key_fn is None else self._fast_key_fn
        route, memo, partition = self._route, self._memo, partition_of
        memo_get = memo.get
        room = KEY_MEMO_LIMIT - len(memo)
        for item in batch:
            key = key_fn(item)
            if type(key) is int:
                h = hash(key)
                target = route[((h ^ (h >> 32)) * _GOLDEN32 & _MASK32) % PARTITION_COUNT]
            else:
                try:
                    target = memo_get(key)
                except TypeError:  # unhashable: partition_of hashes its pickle
                    target = route[partition(key)]
                else:
                    if target is None:
                        target = route[partition(key)]
                        if room > 0:
                            memo[key] = target
                            room -= 1
            appends[target](item)
        return self._unrouted(outputs)

    def _unrouted(self, outputs: list[list]) -> list[list]:
        """The outputs of the targets; ValueError if an item's partition has none."""
        if outputs[-1]:
            item = outputs[-1][0]
            raise ValueError(f"an item of partition {partition_of(self._key_fn(item))} reached an edge "
                             f"where no target handles that partition: {item!r}")
        return outputs[:-1]


# ---------------------------------------------------------------------------------
# Snapshot entries by partition


class _Broadcast(Exception):
    """A broadcast entry among keyed ones: the batch takes the general path."""


def _keyed_partition(key) -> int:
    if type(key) is BroadcastKey:
        raise _Broadcast
    return partition_of(key)


_IDENTITY_ROUTE = list(range(PARTITION_COUNT))
_entry_key = operator.itemgetter(0)


def group_by_partition(entries: list) -> dict[int, list]:
    """State entries (key, value) by the partition of their key; broadcast entries
    (BroadcastKey keys) under -1. Snapshots group every entry of every processor, so
    keyed entries go through the C routing loop when it was built (route = partition)."""
    if _split_c is not None and entries:
        try:
            split = _split_c(entries, _entry_key, _IDENTITY_ROUTE, PARTITION_COUNT, {}, 0, _keyed_partition)
        except _Broadcast:
            pass
        else:
            return {partition: group for partition, group in enumerate(split) if group}
    groups: dict[int, list] = {}
    for entry in entries:
        key = entry[0]
        partition = -1 if type(key) is BroadcastKey else partition_of(key)
        groups.setdefault(partition, []).append(entry)
    return groups
