"""Sinks: `Sinks` factories and `SinkBuilder` for users' own sinks."""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from jetmq.core.processor import Processor, ProcessorContext
from jetmq.core.processors import NoopProcessor
from jetmq.pipeline.processors.sinks import (
    BuilderSinkProcessor,
    LoggerSinkProcessor,
    ObservableSinkProcessor,
    WriteFilesProcessor,
    WriteListProcessor,
    WriteMapProcessor,
)
from jetmq.pipeline.sources import _check_fn, _check_parallelism, _check_structure_name

__all__ = ["Sink", "SinkBuilder", "SinkBuilderStep", "Sinks"]


@dataclass(frozen=True)
class Sink:
    """Where a pipeline's items end: the vertex it lowers to. A sink's vertex gets
    its items on a local edge, on the members where they are."""

    name: str
    supplier: Callable[[], Processor]
    local_parallelism: int = 1
    receives_timestamps: bool = False
    """On a stage with timestamps, hand the processor the `(ts, item)` events as they
    are (e.g. a sink measuring latency from each result's event time) instead of bare
    items."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a sink's name must be a non-empty str, got {self.name!r}")
        if not callable(self.supplier):
            raise TypeError(f"sink {self.name!r}: supplier must be callable, got {self.supplier!r}")
        _check_parallelism(f"sink {self.name!r}", self.local_parallelism)

    def __repr__(self) -> str:
        return f"Sink({self.name!r})"


class Sinks:
    """Factories of the built-in sinks."""

    @staticmethod
    def map(name: str) -> Sink:
        """Puts (key, value) tuples into the cluster's named map (Jet's Map.Entry); any
        other item fails the job. Sent to the master in batches, and whatever is
        buffered when the input pauses. Under EXACTLY_ONCE the writes are staged and
        become visible when the next snapshot commits (or the job completes), so a
        restored job never writes twice; otherwise at-least-once."""
        _check_structure_name("Sinks.map", name)
        return Sink(f"map-sink({name})", partial(WriteMapProcessor, name))

    @staticmethod
    def list(name: str) -> Sink:
        """Appends the items to the cluster's named list, in batches; exactly-once under
        EXACTLY_ONCE as `map` (visible when the next snapshot commits)."""
        _check_structure_name("Sinks.list", name)
        return Sink(f"list-sink({name})", partial(WriteListProcessor, name))

    @staticmethod
    def files(directory: str, encoding: str = "utf-8") -> Sink:
        """Writes str(item) lines, each processor to its own files in `directory` (made if
        missing; a relative one is made absolute here, on the client): `<global index>`,
        or under EXACTLY_ONCE one file per snapshot, `<global index>-<snapshot id>`,
        published by two-phase commit (see WriteFilesProcessor)."""
        if not isinstance(directory, (str, os.PathLike)):
            raise TypeError(f"Sinks.files: directory must be a path, got {directory!r}")
        return Sink("files-sink", partial(WriteFilesProcessor, os.path.abspath(os.fspath(directory)), encoding))

    @staticmethod
    def logger(fn: Callable[[Any], str] = str) -> Sink:
        """Logs fn(item) for each item at INFO, through the processor's logger."""
        _check_fn("Sinks.logger", "fn", fn)
        return Sink("logger-sink", partial(LoggerSinkProcessor, fn))

    @staticmethod
    def observable(name: str) -> Sink:
        """Publishes the items to the cluster's named observable, which a client reads
        with `get_observable(name)` as they arrive; it ends with the job (with its
        error if it fails). At-least-once: after a restart from a snapshot, the items
        emitted since that snapshot are published again."""
        _check_structure_name("Sinks.observable", name)
        return Sink(f"observable-sink({name})", partial(ObservableSinkProcessor, name))

    @staticmethod
    def noop() -> Sink:
        """Discards every item."""
        return Sink("noop-sink", NoopProcessor)


class SinkBuilder:
    """Builds a user's sink from functions, as Jet's SinkBuilder:

        sink = (SinkBuilder.sink_builder("my-sink", lambda ctx: open(f"out-{ctx.global_index}", "w"))
                .receive_fn(lambda f, item: f.write(f"{item}\\n"))
                .flush_fn(lambda f: f.flush())      # optional
                .destroy_fn(lambda f: f.close())    # optional
                .build())

    `create_fn(context)` makes the sink's state in each processor;
    `receive_fn(state, item)` takes each item; `flush_fn(state)` runs after each
    batch of items and when the input ends; `destroy_fn(state)` when the job ends,
    also on failure. `preferred_local_parallelism(n)` (default 1) runs n
    processors per member.
    """

    @staticmethod
    def sink_builder(name: str, create_fn: Callable[[ProcessorContext], Any]) -> SinkBuilderStep:
        return SinkBuilderStep(name, create_fn)


class SinkBuilderStep:
    """The steps of `SinkBuilder.sink_builder(...)`; each returns the builder."""

    def __init__(self, name: str, create_fn: Callable[[ProcessorContext], Any]) -> None:
        _check_structure_name("SinkBuilder.sink_builder", name)
        _check_fn(f"SinkBuilder.sink_builder({name!r})", "create_fn", create_fn)
        self._name = name
        self._create_fn = create_fn
        self._receive_fn: Callable[[Any, Any], None] | None = None
        self._flush_fn: Callable[[Any], None] | None = None
        self._destroy_fn: Callable[[Any], None] | None = None
        self._local_parallelism = 1

    def receive_fn(self, fn: Callable[[Any, Any], None]) -> SinkBuilderStep:
        _check_fn(f"sink {self._name!r}", "receive_fn", fn)
        self._receive_fn = fn
        return self

    def flush_fn(self, fn: Callable[[Any], None]) -> SinkBuilderStep:
        _check_fn(f"sink {self._name!r}", "flush_fn", fn)
        self._flush_fn = fn
        return self

    def destroy_fn(self, fn: Callable[[Any], None]) -> SinkBuilderStep:
        _check_fn(f"sink {self._name!r}", "destroy_fn", fn)
        self._destroy_fn = fn
        return self

    def preferred_local_parallelism(self, local_parallelism: int) -> SinkBuilderStep:
        _check_parallelism(f"sink {self._name!r}", local_parallelism)
        self._local_parallelism = local_parallelism
        return self

    def build(self) -> Sink:
        if self._receive_fn is None:
            raise ValueError(f"sink {self._name!r}: call receive_fn(fn) before build()")
        supplier = partial(BuilderSinkProcessor, self._create_fn, self._receive_fn, self._flush_fn,
                           self._destroy_fn)
        return Sink(self._name, supplier, self._local_parallelism)
