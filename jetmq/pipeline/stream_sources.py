"""Streaming sources: `StreamSource`, the built-in ones and `SourceBuilder.stream`.

`p.read_from(stream_source)` gives a StreamSourceStage, on which the pipeline
chooses how items get timestamps (`with_timestamps`, `with_ingestion_timestamps`,
`with_native_timestamps`, `without_timestamps`); the source's processor then
timestamps its items and generates the watermarks (jetmq.pipeline.events).
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from jetmq.core.processor import Processor, ProcessorContext
from jetmq.pipeline.events import DEFAULT_IDLE_TIMEOUT_MS, EventTimePolicy
from jetmq.pipeline.processors.stream_sources import (
    MAX_LINE_BYTES,
    FileWatcherProcessor,
    ItemStreamProcessor,
    SocketSourceProcessor,
    StreamBuilderSourceProcessor,
    StreamSourceBuffer,
    default_item,
)
from jetmq.pipeline.sources import _check_fn, _check_parallelism, _check_structure_name

__all__ = ["StreamSource", "StreamSourceBuilder", "file_watcher", "item_stream", "socket"]


@dataclass(frozen=True)
class StreamSource:
    """An unbounded source: the vertex it lowers to. `processor_fn(policy)` makes one
    of its processors for the stage's EventTimePolicy."""

    name: str
    processor_fn: Callable[[EventTimePolicy], Processor]
    local_parallelism: int = 1
    supports_native_timestamps: bool = False
    idle_timeout_ms: int = DEFAULT_IDLE_TIMEOUT_MS

    def __post_init__(self) -> None:
        _check_structure_name("StreamSource", self.name)
        if not callable(self.processor_fn):
            raise TypeError(f"source {self.name!r}: processor_fn must be callable, got {self.processor_fn!r}")
        _check_parallelism(f"source {self.name!r}", self.local_parallelism)
        if type(self.idle_timeout_ms) is not int or self.idle_timeout_ms < 0:
            raise ValueError(f"source {self.name!r}: idle_timeout_ms must be an int >= 0, "
                             f"got {self.idle_timeout_ms!r}")

    def with_idle_timeout(self, idle_timeout_ms: int) -> StreamSource:
        """A copy whose processors count as idle after `idle_timeout_ms` without items
        (Jet's setPartitionIdleTimeout; see jetmq.pipeline.events for what idle does)."""
        return dataclasses.replace(self, idle_timeout_ms=idle_timeout_ms)

    def supplier(self, policy: EventTimePolicy) -> Callable[[], Processor]:
        return partial(self.processor_fn, policy)

    def __repr__(self) -> str:
        return f"StreamSource({self.name!r})"


def item_stream(items_per_second: int, fn: Callable[[int, int], Any] | None = None) -> StreamSource:
    if type(items_per_second) is not int or items_per_second < 1:
        raise ValueError(f"Sources.item_stream: items_per_second must be an int >= 1, got {items_per_second!r}")
    if fn is not None:
        _check_fn("Sources.item_stream", "fn", fn)
    return StreamSource("item-stream", partial(ItemStreamProcessor, items_per_second, fn or default_item),
                        supports_native_timestamps=True)


def file_watcher(directory: str, glob: str = "*", shared_file_system: bool = True,
                 encoding: str = "utf-8") -> StreamSource:
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"Sources.file_watcher: directory must be a path, got {directory!r}")
    if not isinstance(glob, str) or not glob:
        raise TypeError(f"Sources.file_watcher: glob must be a non-empty str, got {glob!r}")
    directory = os.fspath(directory)
    if shared_file_system:
        directory = os.path.abspath(directory)
    return StreamSource("file-watcher", partial(FileWatcherProcessor, directory, glob,
                                                         bool(shared_file_system), encoding))


def socket(host: str, port: int, encoding: str = "utf-8", max_line_bytes: int = MAX_LINE_BYTES) -> StreamSource:
    if not isinstance(host, str) or not host:
        raise TypeError(f"Sources.socket: host must be a non-empty str, got {host!r}")
    if type(port) is not int or not 0 < port < 65536:
        raise ValueError(f"Sources.socket: port must be an int in 1..65535, got {port!r}")
    if type(max_line_bytes) is not int or max_line_bytes < 1:
        raise ValueError(f"Sources.socket: max_line_bytes must be a positive int, got {max_line_bytes!r}")
    return StreamSource(f"socket-source({host}:{port})", partial(SocketSourceProcessor, host, port, encoding,
                                                                          max_line_bytes=max_line_bytes))


class StreamSourceBuilder:
    """The steps of `SourceBuilder.stream(...)` / `SourceBuilder.timestamped_stream(...)`;
    each returns the builder."""

    def __init__(self, name: str, create_fn: Callable[[ProcessorContext], Any], timestamped: bool) -> None:
        _check_structure_name("SourceBuilder.stream", name)
        _check_fn(f"SourceBuilder.stream({name!r})", "create_fn", create_fn)
        self._name = name
        self._create_fn = create_fn
        self._timestamped = timestamped
        self._fill_buffer_fn: Callable[[Any, StreamSourceBuffer], None] | None = None
        self._create_snapshot_fn: Callable[[Any], Any] | None = None
        self._restore_snapshot_fn: Callable[[Any, list], None] | None = None
        self._destroy_fn: Callable[[Any], None] | None = None
        self._local_parallelism: int | None = None

    def fill_buffer_fn(self, fn: Callable[[Any, StreamSourceBuffer], None]) -> StreamSourceBuilder:
        _check_fn(f"source {self._name!r}", "fill_buffer_fn", fn)
        self._fill_buffer_fn = fn
        return self

    def create_snapshot_fn(self, fn: Callable[[Any], Any]) -> StreamSourceBuilder:
        """`fn(state)` returns what to save in each snapshot (for example an offset)."""
        _check_fn(f"source {self._name!r}", "create_snapshot_fn", fn)
        self._create_snapshot_fn = fn
        return self

    def restore_snapshot_fn(self, fn: Callable[[Any, list], None]) -> StreamSourceBuilder:
        """`fn(state, saved)`: `saved` lists what every instance's create_snapshot_fn
        returned (one element unless distributed); called after create_fn."""
        _check_fn(f"source {self._name!r}", "restore_snapshot_fn", fn)
        self._restore_snapshot_fn = fn
        return self

    def destroy_fn(self, fn: Callable[[Any], None]) -> StreamSourceBuilder:
        _check_fn(f"source {self._name!r}", "destroy_fn", fn)
        self._destroy_fn = fn
        return self

    def distributed(self, local_parallelism: int) -> StreamSourceBuilder:
        """Run `local_parallelism` instances on every member instead of one in the cluster."""
        _check_parallelism(f"source {self._name!r}", local_parallelism)
        self._local_parallelism = local_parallelism
        return self

    def build(self) -> StreamSource:
        if self._fill_buffer_fn is None:
            raise ValueError(f"source {self._name!r}: call fill_buffer_fn(fn) before build()")
        processor_fn = partial(
            StreamBuilderSourceProcessor, self._name, self._create_fn, self._fill_buffer_fn,
            self._create_snapshot_fn, self._restore_snapshot_fn, self._destroy_fn,
            self._local_parallelism is not None)
        return StreamSource(self._name, processor_fn, self._local_parallelism or 1,
                            supports_native_timestamps=self._timestamped)
