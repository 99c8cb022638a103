"""Source processors: files, a named list or map of the cluster, and the SourceBuilder's.

Each emits in `complete()` as much as the outbox takes and returns False until
everything is out; none reads more than one chunk of a file per call.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from fnmatch import fnmatchcase
from typing import Any, TextIO

from jetmq.core.processor import Processor, ProcessorContext

__all__ = [
    "BuilderSourceProcessor",
    "ReadFilesProcessor",
    "ReadListProcessor",
    "ReadMapProcessor",
    "SourceBuffer",
    "matching_files",
    "services_of",
]

FILE_CHUNK_CHARS = 1 << 16
"""Characters read from a file per step: 64 Ki bounds both the memory held and the
time of one call, and amortises the per-chunk split over ~1,000 lines."""


def services_of(context: ProcessorContext, what: str) -> Any:
    """The cluster's services, or a RuntimeError naming `what` needs them."""
    if context.services is None:
        raise RuntimeError(f"{what} needs a cluster's services (named maps and lists): "
                           f"run the job on a cluster, or give the in-process execution a services object")
    return context.services


def matching_files(directory: str, glob: str) -> list[str]:
    """Paths of the regular files directly in `directory` whose names match `glob`
    (fnmatch, case-sensitive, dot files included), sorted by name."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"the directory {directory!r} of Sources.files does not exist")
    names = sorted(name for name in os.listdir(directory) if fnmatchcase(name, glob))
    return [path for path in (os.path.join(directory, name) for name in names) if os.path.isfile(path)]


class ReadFilesProcessor(Processor):
    """Emits the lines (newline removed) of its share of the files of a directory.

    shared_file_system=True: the sorted matching files are dealt round robin to all
    processors of the cluster by global index, so each file is read once.
    shared_file_system=False: each member reads all files of its own directory,
    dealt among its local processors (Jet's default, for per-host local files).

    Reads lazily, one chunk at a time: never a whole file in memory.
    """

    def __init__(self, directory: str, glob: str, shared_file_system: bool, encoding: str) -> None:
        self._directory = directory
        self._glob = glob
        self._shared = shared_file_system
        self._encoding = encoding
        self._paths: Iterator[str] = iter(())
        self._file: TextIO | None = None
        self._tail = ""  # the start of a line whose end is in the next chunk
        self._lines: Iterator[str] = iter(())

    def init_hook(self) -> None:
        ctx = self.context
        paths = matching_files(self._directory, self._glob)
        if self._shared:
            mine = paths[ctx.global_index::ctx.total_parallelism]
        else:
            mine = paths[ctx.local_index::ctx.local_parallelism]
        self._paths = iter(mine)

    def complete(self) -> bool:
        outbox = self.outbox
        while True:
            room = outbox.room()
            if not room:
                return False
            if outbox.offer_many(self._lines) == room:
                return False  # full (the chunk may be exhausted exactly: the next call sees)
            if not self._read_chunk():
                return True

    def _read_chunk(self) -> bool:
        """Load the next chunk's complete lines into self._lines; False when all files are read."""
        while True:
            if self._file is None:
                path = next(self._paths, None)
                if path is None:
                    return False
                self._file = open(path, encoding=self._encoding)  # universal newlines: \r\n -> \n
                self._tail = ""
            chunk = self._file.read(FILE_CHUNK_CHARS)
            if not chunk:
                self._file.close()
                self._file = None
                if self._tail:  # a last line without a newline
                    self._lines = iter((self._tail,))
                    self._tail = ""
                    return True
                continue
            lines = (self._tail + chunk).split("\n")
            self._tail = lines.pop()
            self._lines = iter(lines)
            return True

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class _ReadNamedProcessor(Processor):
    """Reads a named structure from the master in init, on the processor of global
    index 0 only, and emits its contents."""

    what = ""

    def __init__(self, name: str) -> None:
        self._name = name
        self._items: Iterator[Any] = iter(())

    def init_hook(self) -> None:
        if self.context.global_index == 0:
            self._items = self._read(services_of(self.context, f"{self.what}({self._name!r})"))

    def _read(self, services: Any) -> Iterator[Any]:
        raise NotImplementedError

    def complete(self) -> bool:
        room = self.outbox.room()
        return self.outbox.offer_many(self._items) < room


class ReadListProcessor(_ReadNamedProcessor):
    """Emits the items of the cluster's named list, in order."""

    what = "Sources.list"

    def _read(self, services: Any) -> Iterator[Any]:
        return iter(services.read_list(self._name))


class ReadMapProcessor(_ReadNamedProcessor):
    """Emits the entries of the cluster's named map as (key, value) tuples."""

    what = "Sources.map"

    def _read(self, services: Any) -> Iterator[Any]:
        return iter(services.read_map(self._name).items())


class SourceBuffer:
    """What a SourceBuilder's fill_buffer_fn fills: `add(item)`, and `close()` once the
    source has no more items."""

    __slots__ = ("_items", "_closed")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._closed = False

    def add(self, item: Any) -> None:
        if self._closed:
            raise RuntimeError("SourceBuffer.add() after close(): the source already said it has ended")
        self._items.append(item)

    def close(self) -> None:
        self._closed = True

    @property
    def is_closed(self) -> bool:
        return self._closed

    def take(self) -> list[Any]:
        items, self._items = self._items, []
        return items

    def __len__(self) -> int:
        return len(self._items)


class BuilderSourceProcessor(Processor):
    """Runs a SourceBuilder's functions: `create_fn(context)` in init, then
    `fill_buffer_fn(state, buffer)` whenever everything it added so far is emitted,
    until it closes the buffer; `destroy_fn(state)` in close(), also on failure.

    Not distributed, only the processor of global index 0 runs (one instance in the
    cluster, as Jet's); distributed, every processor runs its own instance.
    """

    def __init__(self, create_fn: Callable[[ProcessorContext], Any],
                 fill_buffer_fn: Callable[[Any, SourceBuffer], None],
                 destroy_fn: Callable[[Any], None] | None, distributed: bool) -> None:
        self._create_fn = create_fn
        self._fill_buffer_fn = fill_buffer_fn
        self._destroy_fn = destroy_fn
        self._distributed = distributed
        self._state: Any = None
        self._created = False
        self._buffer = SourceBuffer()
        self._pending: Iterator[Any] = iter(())

    def init_hook(self) -> None:
        if self._distributed or self.context.global_index == 0:
            self._state = self._create_fn(self.context)
            self._created = True
        else:
            self._buffer.close()

    def complete(self) -> bool:
        outbox, buffer = self.outbox, self._buffer
        filled = False  # fill the buffer at most once per call, so that a call stays short
        while True:
            room = outbox.room()
            if not room or outbox.offer_many(self._pending) == room:
                return False
            if len(buffer):
                self._pending = iter(buffer.take())
                continue
            if buffer.is_closed:
                return True
            if filled:
                return False
            self._fill_buffer_fn(self._state, buffer)
            filled = True

    def close(self) -> None:
        if self._created and self._destroy_fn is not None:
            self._created = False
            self._destroy_fn(self._state)
