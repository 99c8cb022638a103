"""Vertex: a named step of a job, and DagValidationError, raised for any malformed graph."""

from __future__ import annotations

from collections.abc import Callable

from jetmq.core.processor import Processor

__all__ = [
    "DEFAULT_LOCAL_PARALLELISM",
    "LOCAL_PARALLELISM_USE_DEFAULT",
    "DagValidationError",
    "ProcessorSupplier",
    "Vertex",
]

LOCAL_PARALLELISM_USE_DEFAULT = -1
"""Passed as local_parallelism: use DEFAULT_LOCAL_PARALLELISM."""

DEFAULT_LOCAL_PARALLELISM = 1
"""Processors per member: a member is one process with one loop, so parallelism comes
from members (docs/jet-compatibility.md §7)."""

ProcessorSupplier = Callable[[], Processor]


class DagValidationError(ValueError):
    """The DAG is malformed; the message names the vertex or edge at fault."""


class Vertex:
    """A named step of the job, run as `local_parallelism` processors on each member;
    `processor_supplier()` makes one new Processor per instance.
    """

    __slots__ = ("name", "processor_supplier", "local_parallelism")

    def __init__(
        self,
        name: str,
        processor_supplier: ProcessorSupplier,
        local_parallelism: int = DEFAULT_LOCAL_PARALLELISM,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise DagValidationError(f"a vertex name must be a non-empty str, got {name!r}")
        if not callable(processor_supplier):
            raise DagValidationError(
                f"vertex {name!r}: processor_supplier must be a callable returning a new Processor, "
                f"got {processor_supplier!r}"
            )
        check_local_parallelism(name, local_parallelism)
        self.name = name
        self.processor_supplier = processor_supplier
        self.local_parallelism = (
            DEFAULT_LOCAL_PARALLELISM
            if local_parallelism == LOCAL_PARALLELISM_USE_DEFAULT
            else local_parallelism
        )

    def __repr__(self) -> str:
        return f"Vertex({self.name!r}, local_parallelism={self.local_parallelism})"


def check_local_parallelism(name: str, local_parallelism: object) -> None:
    """DagValidationError unless `local_parallelism` is an int >= 1 or the default marker."""
    if type(local_parallelism) is not int or (
        local_parallelism < 1 and local_parallelism != LOCAL_PARALLELISM_USE_DEFAULT
    ):
        raise DagValidationError(
            f"vertex {name!r} has local_parallelism {local_parallelism!r}: it must be an int >= 1, "
            f"or {LOCAL_PARALLELISM_USE_DEFAULT} for the default ({DEFAULT_LOCAL_PARALLELISM})"
        )


def vertex_name_of(vertex: Vertex | str) -> str:
    """The name of `vertex`, given as a Vertex or already as its name."""
    return vertex.name if isinstance(vertex, Vertex) else vertex
