"""Source processors: files, a named list or map of the cluster, and the SourceBuilder's.

Each emits in `complete()` as much as the outbox takes and returns False until
everything is out; none reads more than one chunk of a file per call.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from fnmatch import fnmatchcase
from typing import Any, TextIO

from jetmq.core.inbox_outbox import Inbox
from jetmq.core.processor import Processor, ProcessorContext
from jetmq.core.snapshot import BroadcastKey
from jetmq.core.processors import ItemsSourceProcessor
from jetmq.pipeline.processors.aggregation import SavesEntries

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


class ReadFilesProcessor(SavesEntries):
    """Emits the lines (newline removed) of its share of the files of a directory.

    shared_file_system=True: the sorted matching files are dealt round robin to all
    processors of the cluster by global index, so each file is read once.
    shared_file_system=False: each member reads all files of its own directory,
    dealt among its local processors (Jet's default, for per-host local files).

    Reads lazily, one chunk at a time: never a whole file in memory.

    Snapshot state: per file it has started, the lines emitted and whether it is done,
    under a BroadcastKey (with the member index if files are per member), kept after
    it completes. A restored processor skips finished files and the emitted lines of
    the others, whichever processor read them before.
    """

    def __init__(self, directory: str, glob: str, shared_file_system: bool, encoding: str) -> None:
        self._directory = directory
        self._glob = glob
        self._shared = shared_file_system
        self._encoding = encoding
        self._mine: list[str] = []
        self._paths: Iterator[str] = iter(())
        self._file: TextIO | None = None
        self._tail = ""  # the start of a line whose end is in the next chunk
        self._lines: Iterator[str] = iter(())
        self._restored: dict[str, tuple[int, bool]] = {}  # path -> (lines emitted, done)
        self._progress: dict[str, tuple[int, bool]] = {}  # the same, for this processor's files
        self._path: str | None = None  # the file being read
        self._emitted = 0  # its lines emitted (or skipped as emitted before a restore)
        self._skip = 0  # lines still to skip in it

    def init_hook(self) -> None:
        ctx = self.context
        paths = matching_files(self._directory, self._glob)
        if self._shared:
            mine = paths[ctx.global_index::ctx.total_parallelism]
        else:
            mine = paths[ctx.local_index::ctx.local_parallelism]
        self._mine = mine
        self._paths = iter(mine)

    def _key(self, path: str) -> BroadcastKey:
        return BroadcastKey(("files-source", path) if self._shared
                            else ("files-source", self.context.member_index, path))

    def complete(self) -> bool:
        outbox = self.outbox
        while True:
            room = outbox.room()
            if not room:
                return False
            emitted = outbox.offer_many(self._lines)
            self._emitted += emitted
            if emitted == room:
                return False  # full (the chunk may be exhausted exactly: the next call sees)
            if not self._read_chunk():
                return True

    def _read_chunk(self) -> bool:
        """Load the next chunk's complete lines into self._lines; False when all files are read."""
        while True:
            if self._file is None:
                if self._path is not None:
                    self._progress[self._path] = (self._emitted, True)
                    self._path = None
                path = next(self._paths, None)
                if path is None:
                    return False
                emitted, done = self._restored.get(path, (0, False))
                if done:
                    self._progress[path] = (emitted, True)
                    continue
                self._file = open(path, encoding=self._encoding)  # universal newlines: \r\n -> \n
                self._path, self._emitted, self._skip, self._tail = path, emitted, emitted, ""
            chunk = self._file.read(FILE_CHUNK_CHARS)
            if not chunk:
                self._file.close()
                self._file = None
                tail, self._tail = self._tail, ""
                if tail and self._skip:  # a last line without a newline, emitted before
                    self._skip -= 1
                elif tail:
                    self._lines = iter((tail,))
                    return True
                continue
            lines = (self._tail + chunk).split("\n")
            self._tail = lines.pop()
            if self._skip:
                skipped = min(self._skip, len(lines))
                self._skip -= skipped
                lines = lines[skipped:]
            self._lines = iter(lines)
            return True

    def _entries(self) -> list[tuple[Any, Any]]:
        # files of this processor not reached yet keep the position they were restored with
        progress = {path: self._restored[path] for path in self._mine if path in self._restored}
        progress.update(self._progress)
        if self._path is not None:
            progress[self._path] = (self._emitted, False)
        return [(self._key(path), position) for path, position in progress.items()]

    def state_after_complete(self) -> list[tuple[Any, Any]]:
        return self._entries()

    def restore_from_snapshot(self, inbox: Inbox) -> None:
        for key, position in inbox.take():
            if type(key) is BroadcastKey and key.key[0] == "files-source":
                if self._shared and len(key.key) == 2:
                    self._restored[key.key[1]] = position
                elif not self._shared and key.key[1] == self.context.member_index:
                    self._restored[key.key[2]] = position

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class _ReadNamedProcessor(ItemsSourceProcessor):
    """Reads a named structure from the master in init, on the processor of global
    index 0 only, and emits its contents; its position is saved as ItemsSourceProcessor's
    (a restored job reads the structure again and goes on after that position)."""

    what = ""

    def __init__(self, name: str) -> None:
        super().__init__([])
        self._name = name

    def init_hook(self) -> None:
        if self._reads():
            self._items = self._read(services_of(self.context, f"{self.what}({self._name!r})"))

    def _read(self, services: Any) -> list[Any]:
        raise NotImplementedError


class ReadListProcessor(_ReadNamedProcessor):
    """Emits the items of the cluster's named list, in order."""

    what = "Sources.list"

    def _read(self, services: Any) -> list[Any]:
        return list(services.read_list(self._name))


class ReadMapProcessor(_ReadNamedProcessor):
    """Emits the entries of the cluster's named map as (key, value) tuples."""

    what = "Sources.map"

    def _read(self, services: Any) -> list[Any]:
        return list(services.read_map(self._name).items())


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
