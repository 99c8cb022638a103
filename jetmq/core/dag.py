"""The job graph: vertices (processor suppliers) connected by edges (routed queues).

Plain picklable objects: a DAG travels to the members with cloudpickle, so a vertex
holds its processor supplier, an edge its key function, and nothing else that would
not pickle (no locks, no open resources). The graph's names are importable from here.
"""

from __future__ import annotations

from collections import deque

from jetmq.core.edge import DEFAULT_QUEUE_SIZE, Edge, RoutingPolicy
from jetmq.core.vertex import (
    DEFAULT_LOCAL_PARALLELISM,
    LOCAL_PARALLELISM_USE_DEFAULT,
    DagValidationError,
    ProcessorSupplier,
    Vertex,
    check_local_parallelism,
)

__all__ = [
    "DAG",
    "DEFAULT_LOCAL_PARALLELISM",
    "DEFAULT_QUEUE_SIZE",
    "DagValidationError",
    "Edge",
    "LOCAL_PARALLELISM_USE_DEFAULT",
    "RoutingPolicy",
    "Vertex",
]


class DAG:
    """A directed acyclic graph of vertices and edges: the form every job takes."""

    def __init__(self) -> None:
        self._vertices: dict[str, Vertex] = {}
        self._edges: list[Edge] = []

    def new_vertex(
        self,
        name: str,
        processor_supplier: ProcessorSupplier,
        local_parallelism: int = DEFAULT_LOCAL_PARALLELISM,
    ) -> Vertex:
        """Create a vertex, add it and return it."""
        vertex = Vertex(name, processor_supplier, local_parallelism)
        self.vertex(vertex)
        return vertex

    def vertex(self, vertex: Vertex) -> DAG:
        """Add an existing vertex; its name must be new in this DAG."""
        if vertex.name in self._vertices:
            raise DagValidationError(
                f"vertex {vertex.name!r} is already in this DAG: vertex names must be unique"
            )
        self._vertices[vertex.name] = vertex
        return self

    def edge(self, edge: Edge) -> DAG:
        """Add an edge between two vertices already in this DAG."""
        _check_edge(self, edge)
        _check_ordinal_clash(edge, self._edges)
        self._edges.append(edge)
        return self

    def get_vertex(self, name: str) -> Vertex:
        """The vertex called `name`; KeyError if there is none."""
        try:
            return self._vertices[name]
        except KeyError:
            raise KeyError(f"no vertex named {name!r} in this DAG") from None

    def has_vertex(self, name: str) -> bool:
        """Whether this DAG has a vertex called `name`."""
        return name in self._vertices

    def vertices(self) -> list[Vertex]:
        """All vertices in topological order (sources first); DagValidationError on a cycle."""
        return _topological_order(self)

    def edges(self) -> list[Edge]:
        """All edges, in the order they were added."""
        return list(self._edges)

    def outline(self) -> dict:
        """The DAG's shape as JSON, for the master to keep and show (it never unpickles the DAG):
        ``vertices`` (``name``, ``local_parallelism``) in topological order and ``edges``
        (``from``, ``to``, ``from_ordinal``, ``to_ordinal``, ``routing``, ``distributed``, ``priority``)."""
        return {"vertices": [{"name": v.name, "local_parallelism": v.local_parallelism} for v in self.vertices()],
                "edges": [{"from": e.source_name, "to": e.dest_name, "from_ordinal": e.source_ordinal,
                           "to_ordinal": e.dest_ordinal, "routing": e.routing.value, "distributed": e.is_distributed,
                           "priority": e.priority} for e in self._edges]}

    def inbound_edges(self, name: str) -> list[Edge]:
        """Edges into vertex `name`, by destination ordinal."""
        self.get_vertex(name)
        return sorted((e for e in self._edges if e.dest_name == name), key=lambda e: e.dest_ordinal)

    def outbound_edges(self, name: str) -> list[Edge]:
        """Edges out of vertex `name`, by source ordinal."""
        self.get_vertex(name)
        return sorted(
            (e for e in self._edges if e.source_name == name), key=lambda e: e.source_ordinal
        )

    def validate(self) -> None:
        """Raise DagValidationError, naming the vertex or edge, if the DAG is malformed."""
        if not self._vertices:
            raise DagValidationError("DAG must contain at least one vertex")
        for vertex in self._vertices.values():
            check_local_parallelism(vertex.name, vertex.local_parallelism)
        for i, edge in enumerate(self._edges):
            _check_edge(self, edge)
            _check_ordinal_clash(edge, self._edges[:i])
        for vertex in self._vertices:
            _check_contiguous(
                vertex, "inbound", [e.dest_ordinal for e in self._edges if e.dest_name == vertex]
            )
            _check_contiguous(
                vertex,
                "outbound",
                [e.source_ordinal for e in self._edges if e.source_name == vertex],
            )
        _topological_order(self)

    def __str__(self) -> str:
        try:
            ordered = _topological_order(self)
        except DagValidationError:
            ordered = list(self._vertices.values())  # still printable when cyclic
        lines = ["DAG:"]
        lines += [f"  vertex {v.name!r} (local_parallelism={v.local_parallelism})" for v in ordered]
        lines += [f"  {e!r}" for e in self._edges]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"DAG(vertices={list(self._vertices)}, edges={len(self._edges)})"


def _check_edge(dag: DAG, edge: Edge) -> None:
    """Checks of one edge on its own: complete, between vertices of `dag`, and configured."""
    if edge.dest_name is None:
        raise DagValidationError(
            f"edge {edge.label()} has no destination: complete it with .to(vertex)"
        )
    for name in (edge.source_name, edge.dest_name):
        if not dag.has_vertex(name):
            raise DagValidationError(
                f"edge {edge.label()} refers to vertex {name!r}, which is not in this DAG"
            )
    if edge.routing is RoutingPolicy.PARTITIONED and not callable(edge.key_fn):
        raise DagValidationError(f"edge {edge.label()} is partitioned but has no key_fn")


def _check_ordinal_clash(edge: Edge, others: list[Edge]) -> None:
    """No two edges into the same (vertex, ordinal) or out of the same (vertex, ordinal)."""
    hint = ": use Edge.from_(source, ordinal).to(dest, ordinal) to connect other ordinals"
    for other in others:
        if (other.dest_name, other.dest_ordinal) == (edge.dest_name, edge.dest_ordinal):
            raise DagValidationError(
                f"vertex {edge.dest_name!r} has two inbound edges at ordinal {edge.dest_ordinal}: "
                f"{other.label()} and {edge.label()}{hint}"
            )
        if (other.source_name, other.source_ordinal) == (edge.source_name, edge.source_ordinal):
            raise DagValidationError(
                f"vertex {edge.source_name!r} has two outbound edges at ordinal {edge.source_ordinal}: "
                f"{other.label()} and {edge.label()}{hint}"
            )


def _check_contiguous(vertex: str, direction: str, ordinals: list[int]) -> None:
    """The ordinals of a vertex's inbound (or outbound) edges must be 0..n-1."""
    ordinals.sort()
    missing = sorted(set(range(max(ordinals, default=-1) + 1)) - set(ordinals))
    if missing:
        which = (
            f"ordinal {missing[0]} is"
            if len(missing) == 1
            else f"ordinals {', '.join(map(str, missing))} are"
        )
        raise DagValidationError(
            f"vertex {vertex!r} has {direction} ordinals {ordinals}: {which} not connected"
        )


def _topological_order(dag: DAG) -> list[Vertex]:
    """Kahn's algorithm, stable in the order vertices were added; names a cycle if any."""
    vertices = dag._vertices
    edges = [e for e in dag._edges if e.source_name in vertices and e.dest_name in vertices]
    in_degree = dict.fromkeys(vertices, 0)
    successors: dict[str, list[str]] = {name: [] for name in vertices}
    for e in edges:
        in_degree[e.dest_name] += 1
        successors[e.source_name].append(e.dest_name)
    ready = deque(name for name, degree in in_degree.items() if degree == 0)
    order: list[Vertex] = []
    while ready:
        name = ready.popleft()
        order.append(vertices[name])
        for succ in successors[name]:
            in_degree[succ] -= 1
            if in_degree[succ] == 0:
                ready.append(succ)
    if len(order) < len(vertices):
        raise DagValidationError(f"DAG has a cycle: {' -> '.join(_find_cycle(edges, in_degree))}")
    return order


def _find_cycle(edges: list[Edge], in_degree: dict[str, int]) -> list[str]:
    """A cycle among the vertices Kahn's algorithm left with in-degree > 0: each has a
    predecessor among them, so walking predecessors must revisit a vertex.
    """
    left = {name for name, degree in in_degree.items() if degree > 0}
    predecessor = {
        e.dest_name: e.source_name for e in edges if e.dest_name in left and e.source_name in left
    }
    walk = [next(name for name in in_degree if name in left)]
    while walk[-1] not in walk[:-1]:
        walk.append(predecessor[walk[-1]])
    cycle = walk[walk.index(walk[-1]) :]
    cycle.reverse()
    return cycle
