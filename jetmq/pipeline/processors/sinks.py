"""Sink processors: the cluster's named maps and lists, files, the log, nothing, and
the SinkBuilder's."""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TextIO

from jetmq.core.inbox_outbox import Inbox
from jetmq.core.processor import Processor, ProcessorContext
from jetmq.pipeline.processors.sources import services_of

__all__ = [
    "SINK_BATCH_SIZE",
    "BuilderSinkProcessor",
    "LoggerSinkProcessor",
    "WriteFilesProcessor",
    "WriteListProcessor",
    "WriteMapProcessor",
]

SINK_BATCH_SIZE = 1000
"""Items per message to the master from the map and list sinks: large enough to
spread a message's cost, small enough to keep each message well under a megabyte
for typical entries."""


class _BatchingSinkProcessor(Processor):
    """Buffers items and hands them on in batches of SINK_BATCH_SIZE, and the rest in complete()."""

    what = ""

    def __init__(self, name: str) -> None:
        self._name = name
        self._buffer: list[Any] = []
        self._services: Any = None

    def init_hook(self) -> None:
        self._services = services_of(self.context, f"{self.what}({self._name!r})")

    def process(self, ordinal: int, inbox: Inbox) -> None:
        buffer = self._buffer
        inbox.drain_to(buffer)
        if len(buffer) >= SINK_BATCH_SIZE:
            self._send(buffer)
            self._buffer = []

    def complete(self) -> bool:
        if self._buffer:
            self._send(self._buffer)
            self._buffer = []
        return True

    def _send(self, items: list[Any]) -> None:
        raise NotImplementedError


class WriteMapProcessor(_BatchingSinkProcessor):
    """Puts (key, value) items into the cluster's named map (a later key's value wins)."""

    what = "Sinks.map"

    def _send(self, items: list[Any]) -> None:
        try:
            self._services.map_put_all(self._name, items)
        except (TypeError, ValueError) as e:
            bad = next((item for item in items if type(item) is not tuple or len(item) != 2), None)
            if bad is None:
                raise
            raise TypeError(f"Sinks.map({self._name!r}) takes (key, value) tuples, got {bad!r} "
                            f"of type {type(bad).__name__}") from e


class WriteListProcessor(_BatchingSinkProcessor):
    """Appends items to the cluster's named list."""

    what = "Sinks.list"

    def _send(self, items: list[Any]) -> None:
        self._services.list_add_all(self._name, items)


class WriteFilesProcessor(Processor):
    """Writes str(item) lines to `<directory>/<global index>`, one file per processor,
    created (with the directory) in init, flushed and closed in complete()."""

    def __init__(self, directory: str, encoding: str) -> None:
        self._directory = directory
        self._encoding = encoding
        self._file: TextIO | None = None

    def init_hook(self) -> None:
        os.makedirs(self._directory, exist_ok=True)
        path = os.path.join(self._directory, str(self.context.global_index))
        self._file = open(path, "w", encoding=self._encoding)

    def process(self, ordinal: int, inbox: Inbox) -> None:
        lines = list(map(str, inbox.take()))
        lines.append("")
        self._file.write("\n".join(lines))

    def complete(self) -> bool:
        self.close()
        return True

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class LoggerSinkProcessor(Processor):
    """Logs `fn(item)` for each item at INFO through the processor's logger."""

    def __init__(self, fn: Callable[[Any], str]) -> None:
        self._fn = fn

    def process(self, ordinal: int, inbox: Inbox) -> None:
        info, fn = self.context.logger.info, self._fn
        for item in inbox.take():
            info(fn(item))


class BuilderSinkProcessor(Processor):
    """Runs a SinkBuilder's functions: `create_fn(context)` in init, `receive_fn(state,
    item)` per item, `flush_fn(state)` after each inbox batch and in complete(), and
    `destroy_fn(state)` in close(), also on failure."""

    def __init__(self, create_fn: Callable[[ProcessorContext], Any], receive_fn: Callable[[Any, Any], None],
                 flush_fn: Callable[[Any], None] | None, destroy_fn: Callable[[Any], None] | None) -> None:
        self._create_fn = create_fn
        self._receive_fn = receive_fn
        self._flush_fn = flush_fn
        self._destroy_fn = destroy_fn
        self._state: Any = None
        self._created = False

    def init_hook(self) -> None:
        self._state = self._create_fn(self.context)
        self._created = True

    def process(self, ordinal: int, inbox: Inbox) -> None:
        state, receive = self._state, self._receive_fn
        for item in inbox.take():
            receive(state, item)
        if self._flush_fn is not None:
            self._flush_fn(state)

    def complete(self) -> bool:
        if self._flush_fn is not None:
            self._flush_fn(self._state)
        return True

    def close(self) -> None:
        if self._created and self._destroy_fn is not None:
            self._created = False
            self._destroy_fn(self._state)
