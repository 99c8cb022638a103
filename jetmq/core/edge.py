"""Edge: a routed queue between an output of one vertex and an input of another."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from enum import Enum
from typing import Any

from jetmq.core.partition import partition_of
from jetmq.core.vertex import DagValidationError, Vertex, vertex_name_of

__all__ = ["DEFAULT_QUEUE_SIZE", "Edge", "RoutingPolicy"]

DEFAULT_QUEUE_SIZE = 1024
"""Capacity, in items, of each queue that carries an edge between two processors (as
Jet's). The engine admits a batch while the queue holds fewer items than this, so a
queue may briefly hold up to queue_size plus one batch."""


class RoutingPolicy(Enum):
    """Which downstream processor(s) receive an item sent on an edge.

    On a local edge the candidates are the destination's processors on the same
    member; on a distributed edge, its processors on every member.
    """

    UNICAST = "unicast"
    """Each item to one processor, chosen round robin (the default)."""
    PARTITIONED = "partitioned"
    """Each item to the processor that handles partition_of(key_fn(item)): equal keys
    meet at one processor (see jetmq.core.partition for the tables)."""
    BROADCAST = "broadcast"
    """Each item to every processor."""
    ALL_TO_ONE = "all_to_one"
    """Every item to the one processor that handles `Edge.all_to_one_partition` (on a
    distributed edge, a processor of the member that owns that partition)."""


class Edge:
    """A queue from output `source_ordinal` of one vertex to input `dest_ordinal` of
    another: `Edge.between(a, b)`, or `Edge.from_(a, 1).to(b, 2)` for other ordinals.
    The configuration methods return the edge, so they chain:
    `Edge.between(a, b).distributed().partitioned(key_fn)`.

    priority: inputs of a vertex are consumed in ascending priority (default 0); all
    edges of a lower value must be fully consumed (DONE) before any item of an edge of
    a higher value is processed (Jet semantics, e.g. the build side of a hash join).
    """

    __slots__ = (
        "source_name",
        "source_ordinal",
        "dest_name",
        "dest_ordinal",
        "routing",
        "is_distributed",
        "key_fn",
        "all_to_one_key",
        "priority",
        "queue_size",
    )

    def __init__(
        self,
        source: Vertex | str,
        source_ordinal: int = 0,
        dest: Vertex | str | None = None,
        dest_ordinal: int = 0,
    ) -> None:
        self.source_name = vertex_name_of(source)
        self.source_ordinal = _check_ordinal(source_ordinal, "source")
        self.dest_name: str | None = None if dest is None else vertex_name_of(dest)
        self.dest_ordinal = _check_ordinal(dest_ordinal, "destination")
        self.routing = RoutingPolicy.UNICAST
        self.is_distributed = False
        self.key_fn: Callable[[Any], Hashable] | None = None
        self.all_to_one_key: Hashable = None
        self.priority = 0
        self.queue_size = DEFAULT_QUEUE_SIZE

    @classmethod
    def between(cls, source: Vertex | str, dest: Vertex | str) -> Edge:
        """An edge from output 0 of `source` to input 0 of `dest`."""
        return cls(source, 0, dest, 0)

    @classmethod
    def from_(cls, source: Vertex | str, ordinal: int = 0) -> Edge:
        """An edge from output `ordinal` of `source`; complete it with `.to()`."""
        return cls(source, ordinal)

    def to(self, dest: Vertex | str, ordinal: int = 0) -> Edge:
        """Set the destination: input `ordinal` of `dest`."""
        if self.dest_name is not None:
            raise DagValidationError(f"edge {self.label()} already has a destination")
        self.dest_name = vertex_name_of(dest)
        self.dest_ordinal = _check_ordinal(ordinal, "destination")
        return self

    def distributed(self) -> Edge:
        """Route among the destination's processors on all members, not only local ones."""
        self.is_distributed = True
        return self

    def unicast(self) -> Edge:
        """Each item to one processor, round robin (the default)."""
        return self._route(RoutingPolicy.UNICAST)

    def partitioned(self, key_fn: Callable[[Any], Hashable]) -> Edge:
        """Each item to the processor handling partition_of(key_fn(item)); key_fn must
        be picklable with cloudpickle."""
        if not callable(key_fn):
            raise DagValidationError(
                f"edge {self.label()}: partitioned() needs a callable key_fn, got {key_fn!r}"
            )
        self._route(RoutingPolicy.PARTITIONED)
        self.key_fn = key_fn
        return self

    def broadcast(self) -> Edge:
        """Each item to every processor."""
        return self._route(RoutingPolicy.BROADCAST)

    def all_to_one(self, key: Hashable = None) -> Edge:
        """Every item to the single processor handling the partition of `key` (by
        default the destination vertex's name, so that such edges spread over members).
        """
        self._route(RoutingPolicy.ALL_TO_ONE)
        self.all_to_one_key = key
        return self

    def with_priority(self, priority: int) -> Edge:
        """Set the priority (lower is consumed first; see the class doc)."""
        if type(priority) is not int:
            raise DagValidationError(
                f"edge {self.label()}: priority must be an int, got {priority!r}"
            )
        self.priority = priority
        return self

    def with_queue_size(self, queue_size: int) -> Edge:
        """Set the capacity, in items, of this edge's queues."""
        if type(queue_size) is not int or queue_size < 1:
            raise DagValidationError(
                f"edge {self.label()}: queue_size must be an int >= 1, got {queue_size!r}"
            )
        self.queue_size = queue_size
        return self

    @property
    def all_to_one_partition(self) -> int:
        """The partition whose processor receives every item of an ALL_TO_ONE edge."""
        return partition_of(self.dest_name if self.all_to_one_key is None else self.all_to_one_key)

    def _route(self, routing: RoutingPolicy) -> Edge:
        self.routing = routing
        self.key_fn = None
        self.all_to_one_key = None
        return self

    def label(self) -> str:
        """`source:ordinal -> dest:ordinal`, as error messages name the edge."""
        dest = "?" if self.dest_name is None else f"{self.dest_name}:{self.dest_ordinal}"
        return f"{self.source_name}:{self.source_ordinal} -> {dest}"

    def __repr__(self) -> str:
        traits = ["distributed" if self.is_distributed else "local", self.routing.value]
        if self.priority:
            traits.append(f"priority={self.priority}")
        if self.queue_size != DEFAULT_QUEUE_SIZE:
            traits.append(f"queue_size={self.queue_size}")
        return f"Edge({self.label()}, {' '.join(traits)})"


def _check_ordinal(ordinal: object, end: str) -> int:
    if type(ordinal) is not int or ordinal < 0:
        raise DagValidationError(f"an edge's {end} ordinal must be an int >= 0, got {ordinal!r}")
    return ordinal
