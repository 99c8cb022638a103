"""Hash join: the build side collected into a lookup table, the primary side joined to it.

As Jet's HashJoinCollectP / HashJoinP: a `HashJoinCollectProcessor` per member
receives every build-side item (a distributed broadcast edge), and emits its table
once, in complete(), to the member's joiners (a local broadcast edge of higher
priority, so the table arrives before any primary item is processed). A
`HashJoinProcessor` then joins each primary item with the items of equal key.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

from jetmq.core.inbox_outbox import Inbox
from jetmq.core.processor import Processor
from jetmq.pipeline.processors.fused import FusedTransformProcessor, Step

__all__ = ["HashJoinCollectProcessor", "HashJoinProcessor", "PRIMARY_ORDINAL", "TABLE_ORDINAL"]

PRIMARY_ORDINAL = 0
"""The joiner's input of primary (left) items."""
TABLE_ORDINAL = 1
"""The joiner's input of the lookup table (one item per collector on its member)."""


class HashJoinCollectProcessor(Processor):
    """Builds {key: [item, ...]} from every build-side item; emits it once in complete()."""

    def __init__(self, key_fn: Callable[[Any], Hashable]) -> None:
        self._key_fn = key_fn
        self._table: dict[Hashable, list[Any]] = {}

    def process(self, ordinal: int, inbox: Inbox) -> None:
        table, key_fn = self._table, self._key_fn
        for item in inbox.take():
            key = key_fn(item)
            matches = table.get(key)
            if matches is None:
                table[key] = [item]
            else:
                matches.append(item)

    def complete(self) -> bool:
        return self.outbox.offer(self._table)


class HashJoinProcessor(FusedTransformProcessor):
    """Joins each primary item with the build-side items of equal key, then runs the
    fused steps that follow the join (if any) over the results.

    Semantics of Jet's hashJoin with one joined stage, a left outer join: for every
    primary item, `map_fn(item, match)` is emitted for each build-side item of equal
    key, in the build side's arrival order, and `map_fn(item, None)` once when there is
    none; a None result is dropped (so `map_fn` can turn it into an inner join).
    """

    def __init__(self, key_fn: Callable[[Any], Hashable], map_fn: Callable[[Any, Any], Any],
                 tail_steps: Sequence[Step] = (), timestamped: bool = False) -> None:
        super().__init__((("flat_map", self._join), *tail_steps), timestamped)
        self._key_fn = key_fn
        self._map_fn = map_fn
        self._table: dict[Hashable, list[Any]] = {}

    def _join(self, item: Any) -> Iterable[Any]:
        matches = self._table.get(self._key_fn(item))
        map_fn = self._map_fn
        if matches is None:
            result = map_fn(item, None)
            return () if result is None else (result,)
        return [r for r in (map_fn(item, match) for match in matches) if r is not None]

    def process(self, ordinal: int, inbox: Inbox) -> None:
        if ordinal == TABLE_ORDINAL:
            # One table per collector on this member. The joiners of a member share it
            # (a local broadcast), so it is never changed: several are merged into a new one.
            for table in inbox.take():
                if not self._table:
                    self._table = table
                    continue
                merged = dict(self._table)
                for key, matches in table.items():
                    merged[key] = merged.get(key, []) + matches
                self._table = merged
            return
        super().process(ordinal, inbox)
