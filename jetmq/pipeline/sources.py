"""Batch sources: `Sources` factories and `SourceBuilder` for users' own sources."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from jetmq.core.processor import Processor, ProcessorContext
from jetmq.core.processors import ItemsSourceProcessor
from jetmq.pipeline.processors.sources import (
    BuilderSourceProcessor,
    ReadFilesProcessor,
    ReadListProcessor,
    ReadMapProcessor,
    SourceBuffer,
)

if TYPE_CHECKING:
    from jetmq.pipeline.stream_sources import StreamSource, StreamSourceBuilder

__all__ = ["BatchSource", "BatchSourceBuilder", "SourceBuffer", "SourceBuilder", "Sources"]


@dataclass(frozen=True)
class BatchSource:
    """A finite source: the vertex it lowers to (name, processor supplier, local parallelism)."""

    name: str
    supplier: Callable[[], Processor]
    local_parallelism: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a source's name must be a non-empty str, got {self.name!r}")
        if not callable(self.supplier):
            raise TypeError(f"source {self.name!r}: supplier must be callable, got {self.supplier!r}")
        _check_parallelism(f"source {self.name!r}", self.local_parallelism)

    def __repr__(self) -> str:
        return f"BatchSource({self.name!r})"


class Sources:
    """Factories of the built-in sources: batch ones (`items`, `files`, `list`, `map`)
    and streaming ones (`item_stream`, `file_watcher`, `socket`)."""

    @staticmethod
    def item_stream(items_per_second: int, fn: Callable[[int, int], Any] | None = None) -> StreamSource:
        """Jet's test stream: `fn(timestamp_ms, sequence)` (default: a SimpleEvent) for
        sequence 0, 1, 2, ..., `items_per_second` a second, from one processor in the
        cluster. Native timestamps: item n's is `origin + n * 1000 // items_per_second`,
        where origin is when the job first started; an item is emitted once the clock
        reaches its timestamp. Unlike Jet's, the sequence (and origin) are saved in
        snapshots: a restored job goes on exactly where the snapshot left off, with the
        same items, so it is the source of exactly-once tests (after a suspension it
        catches up at once, in batches)."""
        from jetmq.pipeline.stream_sources import item_stream
        return item_stream(items_per_second, fn)

    @staticmethod
    def file_watcher(directory: str, glob: str = "*", shared_file_system: bool = True,
                     encoding: str = "utf-8") -> StreamSource:
        """The lines appended to the files of `directory` (matching `glob`) after the job
        started, and the lines of files created since: a line once its newline is
        written. Byte offsets per file are saved in snapshots. With a shared file system
        (the default) each file is watched by one processor of the cluster (by a hash of
        its name); without, each member watches its own directory. No native
        timestamps. A missing directory fails the job."""
        from jetmq.pipeline.stream_sources import file_watcher
        return file_watcher(directory, glob, shared_file_system, encoding)

    @staticmethod
    def socket(host: str, port: int, encoding: str = "utf-8", max_line_bytes: int = 1 << 20) -> StreamSource:
        """Text lines read from a TCP connection to `host:port` (one in the cluster); the
        stream ends when the server closes it. At-most-once: nothing is replayed after
        a restart. No native timestamps. A line longer than `max_line_bytes` (default
        1 MiB) fails the job, naming the server: the source never holds an unbounded line."""
        from jetmq.pipeline.stream_sources import socket
        return socket(host, port, encoding, max_line_bytes)

    @staticmethod
    def items(iterable: Iterable[Any]) -> BatchSource:
        """The items of `iterable`, read into a list now (when the pipeline is built),
        emitted in order by one processor in the cluster (global index 0), which saves
        its position in snapshots."""
        try:
            items = list(iterable)
        except TypeError:
            raise TypeError(f"Sources.items needs an iterable, got {iterable!r}") from None
        return BatchSource("items-source", partial(ItemsSourceProcessor, items))

    @staticmethod
    def files(directory: str, glob: str = "*", shared_file_system: bool = True,
              encoding: str = "utf-8") -> BatchSource:
        """The lines (without their newline) of the files in `directory` whose names
        match `glob` (fnmatch; subdirectories are not read).

        shared_file_system=True (the default, since members on one host share one):
        the matching files, sorted by name, are divided among all processors of the
        cluster by global index, so each file is read once; a relative `directory`
        is made absolute here, on the client. shared_file_system=False: each member
        reads all matching files of its own `directory` (as Jet's default), so files
        that several members see are read several times.

        A missing directory fails the job. Files are read lazily in chunks, never
        whole. Lines of one file keep their order; lines of different files
        interleave downstream.
        """
        if not isinstance(directory, (str, os.PathLike)):
            raise TypeError(f"Sources.files: directory must be a path, got {directory!r}")
        if not isinstance(glob, str) or not glob:
            raise TypeError(f"Sources.files: glob must be a non-empty str, got {glob!r}")
        directory = os.fspath(directory)
        if shared_file_system:
            directory = os.path.abspath(directory)
        return BatchSource("files-source",
                           partial(ReadFilesProcessor, directory, glob, bool(shared_file_system), encoding))

    @staticmethod
    def list(name: str) -> BatchSource:
        """The items of the cluster's named list, read once (by one processor) when the job starts."""
        _check_structure_name("Sources.list", name)
        return BatchSource(f"list-source({name})", partial(ReadListProcessor, name))

    @staticmethod
    def map(name: str) -> BatchSource:
        """The entries of the cluster's named map as (key, value) tuples, read once when the job starts."""
        _check_structure_name("Sources.map", name)
        return BatchSource(f"map-source({name})", partial(ReadMapProcessor, name))


class SourceBuilder:
    """Builds a user's batch source from functions, as Jet's SourceBuilder:

        source = (SourceBuilder.batch("numbers", lambda ctx: iter(range(100)))
                  .fill_buffer_fn(fill)          # fill(state, buffer): buffer.add(x) ..., buffer.close()
                  .destroy_fn(lambda state: ...)  # optional
                  .build())

    `create_fn(context)` makes the source's state (context: a ProcessorContext);
    `fill_buffer_fn(state, buffer)` adds a bounded number of items with
    `buffer.add(item)` (it must not block: add nothing if nothing is ready, it will
    be called again) and calls `buffer.close()` once the source has no more;
    `destroy_fn(state)` releases the state when the job ends, also on failure.

    Parallelism, as Jet's: by default one instance runs in the whole cluster (on the
    processor of global index 0). After `.distributed(n)`, each member runs `n`
    instances, each with its own state; `create_fn` tells them apart by
    `context.global_index` and `context.total_parallelism`.
    """

    @staticmethod
    def batch(name: str, create_fn: Callable[[ProcessorContext], Any]) -> BatchSourceBuilder:
        return BatchSourceBuilder(name, create_fn)

    @staticmethod
    def stream(name: str, create_fn: Callable[[ProcessorContext], Any]) -> StreamSourceBuilder:
        """A streaming source (Jet's SourceBuilder.stream): `fill_buffer_fn(state,
        buffer)` adds the items ready now with `buffer.add(item)`, never blocking;
        `create_snapshot_fn(state)` / `restore_snapshot_fn(state, saved_list)` make it
        fault tolerant; `destroy_fn(state)` releases it (also on cancellation)."""
        from jetmq.pipeline.stream_sources import StreamSourceBuilder
        return StreamSourceBuilder(name, create_fn, timestamped=False)

    @staticmethod
    def timestamped_stream(name: str, create_fn: Callable[[ProcessorContext], Any]) -> StreamSourceBuilder:
        """As `stream`, with native timestamps: `buffer.add(item, timestamp_ms)`."""
        from jetmq.pipeline.stream_sources import StreamSourceBuilder
        return StreamSourceBuilder(name, create_fn, timestamped=True)


class BatchSourceBuilder:
    """The steps of `SourceBuilder.batch(...)`; each returns the builder."""

    def __init__(self, name: str, create_fn: Callable[[ProcessorContext], Any]) -> None:
        _check_structure_name("SourceBuilder.batch", name)
        _check_fn(f"SourceBuilder.batch({name!r})", "create_fn", create_fn)
        self._name = name
        self._create_fn = create_fn
        self._fill_buffer_fn: Callable[[Any, SourceBuffer], None] | None = None
        self._destroy_fn: Callable[[Any], None] | None = None
        self._local_parallelism: int | None = None

    def fill_buffer_fn(self, fn: Callable[[Any, SourceBuffer], None]) -> BatchSourceBuilder:
        _check_fn(f"source {self._name!r}", "fill_buffer_fn", fn)
        self._fill_buffer_fn = fn
        return self

    def destroy_fn(self, fn: Callable[[Any], None]) -> BatchSourceBuilder:
        _check_fn(f"source {self._name!r}", "destroy_fn", fn)
        self._destroy_fn = fn
        return self

    def distributed(self, local_parallelism: int) -> BatchSourceBuilder:
        """Run `local_parallelism` instances on every member instead of one in the cluster."""
        _check_parallelism(f"source {self._name!r}", local_parallelism)
        self._local_parallelism = local_parallelism
        return self

    def build(self) -> BatchSource:
        if self._fill_buffer_fn is None:
            raise ValueError(f"source {self._name!r}: call fill_buffer_fn(fn) before build()")
        distributed = self._local_parallelism is not None
        supplier = partial(BuilderSourceProcessor, self._create_fn, self._fill_buffer_fn, self._destroy_fn,
                           distributed)
        return BatchSource(self._name, supplier, self._local_parallelism or 1)


def _check_structure_name(where: str, name: object) -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(f"{where}: name must be a non-empty str, got {name!r}")


def _check_fn(where: str, what: str, fn: object) -> None:
    if not callable(fn):
        raise TypeError(f"{where}: {what} must be callable, got {fn!r}")


def _check_parallelism(where: str, local_parallelism: object) -> None:
    if type(local_parallelism) is not int or local_parallelism < 1:
        raise ValueError(f"{where}: local parallelism must be an int >= 1, got {local_parallelism!r}")
