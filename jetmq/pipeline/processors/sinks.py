"""Sink processors: the cluster's named maps and lists, files, the log, nothing, and
the SinkBuilder's."""
from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any, TextIO

from jetmq.core.inbox_outbox import Inbox
from jetmq.core.processor import Processor, ProcessorContext
from jetmq.pipeline.processors.sources import services_of

__all__ = [
    "SINK_BATCH_SIZE",
    "ObservableSinkProcessor",
    "TimestampStrippingSink",
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
    """Buffers items and hands them on in batches of SINK_BATCH_SIZE, and the rest when
    the input pauses (try_process: a stream's items do not wait for more), before each
    snapshot barrier, and in complete().

    Exactly-once (the job's guarantee is EXACTLY_ONCE): the writes are staged under
    an epoch, the snapshot after them (`current_snapshot_id + 1`; while a snapshot is
    being saved, its own id), and become visible when that snapshot commits or the
    job completes, as `jetmq.testing.CommittingListSink` does; a restored job
    discards the staged writes of snapshots that never committed, so nothing shows
    twice. Otherwise the writes go out at once (at-least-once after a restart).
    """

    what = ""

    def __init__(self, name: str) -> None:
        self._name = name
        self._buffer: list[Any] = []
        self._services: Any = None

    def init_hook(self) -> None:
        self._services = services_of(self.context, f"{self.what}({self._name!r})")
        self._exactly_once = self.context.snapshot_context.exactly_once

    def process(self, ordinal: int, inbox: Inbox) -> None:
        buffer = self._buffer
        inbox.drain_to(buffer)
        if len(buffer) >= SINK_BATCH_SIZE:
            self._flush(self.context.snapshot_context.current_snapshot_id + 1)

    def try_process(self) -> bool:
        if self._buffer:
            self._flush(self.context.snapshot_context.current_snapshot_id + 1)
        return True

    def next_deadline(self) -> float | None:
        return None  # try_process() flushes when the input pauses: only input gives it work

    def save_to_snapshot(self) -> bool:
        if self._buffer:  # the items before this barrier belong to the snapshot being taken
            self._flush(self.context.snapshot_context.current_snapshot_id)
        return True

    def complete(self) -> bool:
        if self._buffer:
            self._flush(self.context.snapshot_context.current_snapshot_id + 1)
        return True

    def _flush(self, epoch: int) -> None:
        items, self._buffer = self._buffer, []
        if self._exactly_once:
            self._stage(epoch, items)
        else:
            self._send(items)

    def _send(self, items: list[Any]) -> None:
        raise NotImplementedError

    def _stage(self, epoch: int, items: list[Any]) -> None:
        raise NotImplementedError


class WriteMapProcessor(_BatchingSinkProcessor):
    """Puts (key, value) items into the cluster's named map (a later key's value wins)."""

    what = "Sinks.map"

    def _send(self, items: list[Any]) -> None:
        self._write(items, self._services.map_put_all)

    def _stage(self, epoch: int, items: list[Any]) -> None:
        context = self.context
        self._write(items, lambda name, entries: self._services.stage_map_put_all(
            context.execution_id, epoch, name, entries))

    def _write(self, items: list[Any], write: Callable[[str, list], None]) -> None:
        try:
            write(self._name, items)
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

    def _stage(self, epoch: int, items: list[Any]) -> None:
        self._services.stage_list_add_all(self.context.execution_id, epoch, self._name, items)


class ObservableSinkProcessor(Processor):
    """Publishes items to the cluster's named observable, each input batch at once (a
    client sees results as they come). Attaches the observable to the job in init, so
    that it ends with the job. At-least-once: after a restart from a snapshot, results
    emitted after that snapshot are published again."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._services: Any = None

    def init_hook(self) -> None:
        self._services = services_of(self.context, f"Sinks.observable({self._name!r})")
        self._services.observable_attach(self._name, self.context.job_id)

    def process(self, ordinal: int, inbox: Inbox) -> None:
        self._services.observable_publish(self._name, inbox.take())


class WriteFilesProcessor(Processor):
    """Writes str(item) lines to files in `directory`, each processor to its own.

    Without exactly-once: to `<directory>/<global index>`, created (with the directory)
    in init, flushed whenever the input pauses, closed in complete(); a restored job
    appends (at-least-once).

    Under EXACTLY_ONCE, by two-phase commit: the lines of each snapshot epoch go to a
    hidden file `.<index>-<epoch>-<execution>.inprogress`; phase 1 of snapshot k seals it
    as `.<index>-<k>-<execution>.prepared`; phase 2 (or a later snapshot's) publishes it
    as `<index>-<k>`. An execution restored from snapshot s first publishes every
    earlier execution's prepared file of an epoch up to s (its lines are covered by s)
    and deletes the rest (they are replayed). When the job completes, the last epoch's
    file is published too. Readers see only published files, each line once.
    """

    _HIDDEN = re.compile(r"\.(\d+)-(\d+)-(\d+)\.(inprogress|prepared)")

    def __init__(self, directory: str, encoding: str) -> None:
        self._directory = directory
        self._encoding = encoding
        self._file: TextIO | None = None
        self._path: str | None = None
        self._prepared: list[tuple[int, str]] = []  # (epoch, path) sealed, not yet published

    def init_hook(self) -> None:
        os.makedirs(self._directory, exist_ok=True)
        self._dirty = False
        snapshots = self.context.snapshot_context
        self._exactly_once = snapshots.exactly_once
        if not self._exactly_once:
            path = os.path.join(self._directory, str(self.context.global_index))
            # a restored job appends to what it wrote before (at-least-once); a new one starts afresh
            mode = "a" if snapshots.restored_snapshot_id >= 0 else "w"
            self._file = open(path, mode, encoding=self._encoding)
            return
        if self.context.local_index == 0:
            self._recover(snapshots.restored_snapshot_id)
        self._open_epoch(snapshots.current_snapshot_id + 1)

    def _recover(self, restored: int) -> None:
        """Finish what earlier executions left: publish what `restored` covers, drop the rest."""
        for name in os.listdir(self._directory):
            match = self._HIDDEN.fullmatch(name)
            if match is None or int(match[3]) == self.context.execution_id:
                continue
            index, epoch, _execution, state = match.groups()
            path = os.path.join(self._directory, name)
            try:
                if state == "prepared" and int(epoch) <= restored:
                    os.replace(path, os.path.join(self._directory, f"{index}-{epoch}"))
                else:
                    os.unlink(path)
            except FileNotFoundError:  # another member on this host got there first
                pass

    def _hidden(self, epoch: int, state: str) -> str:
        return os.path.join(self._directory,
                            f".{self.context.global_index}-{epoch}-{self.context.execution_id}.{state}")

    def _open_epoch(self, epoch: int) -> None:
        self._epoch = epoch
        self._path = self._hidden(epoch, "inprogress")
        self._file = open(self._path, "w", encoding=self._encoding)

    def _seal(self, epoch: int) -> None:
        """Close the current epoch's file as the prepared file of snapshot `epoch`."""
        self._file.close()
        prepared = self._hidden(epoch, "prepared")
        os.replace(self._path, prepared)
        self._prepared.append((epoch, prepared))

    def _publish(self, up_to_epoch: float) -> None:
        kept = []
        for epoch, path in self._prepared:
            if epoch <= up_to_epoch:
                os.replace(path, os.path.join(self._directory, f"{self.context.global_index}-{epoch}"))
            else:
                kept.append((epoch, path))
        self._prepared = kept

    def process(self, ordinal: int, inbox: Inbox) -> None:
        lines = list(map(str, inbox.take()))
        lines.append("")
        self._file.write("\n".join(lines))
        self._dirty = True

    def try_process(self) -> bool:
        if self._dirty:  # a stream's lines reach the file when the input pauses
            self._file.flush()
            self._dirty = False
        return True

    def next_deadline(self) -> float | None:
        return None  # only input gives it work

    def snapshot_commit_prepare(self) -> bool:
        if self._exactly_once:
            snapshot_id = self.context.snapshot_context.current_snapshot_id
            self._file.flush()
            os.fsync(self._file.fileno())
            self._seal(snapshot_id)
            self._open_epoch(snapshot_id + 1)
        return True

    def snapshot_commit_finish(self, success: bool) -> bool:
        if self._exactly_once and success:
            self._publish(self.context.snapshot_context.current_snapshot_id)
        return True

    def complete(self) -> bool:
        if self._exactly_once:  # the job completes: its last epoch is final too
            self._file.flush()
            self._seal(self._epoch)
            self._publish(float("inf"))
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


class TimestampStrippingSink(Processor):
    """Runs a sink's processor on a stage with timestamps: hands it the items without
    their `(ts, item)` wrapping and passes every other call through."""

    def __init__(self, supplier: Callable[[], Processor]) -> None:
        self.inner = supplier()
        self._inbox = Inbox()
        self._ordinal = 0
        self.is_cooperative = self.inner.is_cooperative

    def init(self, outbox, context) -> None:
        super().init(outbox, context)
        self.inner.init(outbox, context)

    def process(self, ordinal: int, inbox: Inbox) -> None:
        mine = self._inbox
        mine.add_batch([item for _ts, item in inbox.take()])
        self._ordinal = ordinal
        self.inner.process(ordinal, mine)

    def try_process(self) -> bool:
        if self._inbox:
            self.inner.process(self._ordinal, self._inbox)
            if self._inbox:
                return False
        return self.inner.try_process()

    def next_deadline(self) -> float | None:
        # as the engine asks a processor itself: only one with work besides input (or items left)
        if self._inbox or type(self.inner).try_process is not Processor.try_process:
            return self.inner.next_deadline()
        return None

    def try_process_watermark(self, watermark) -> bool:
        return self.inner.try_process_watermark(watermark)

    def complete_edge(self, ordinal: int) -> bool:
        return self.inner.complete_edge(ordinal)

    def complete(self) -> bool:
        if self._inbox:
            self.inner.process(self._ordinal, self._inbox)
            if self._inbox:
                return False
        return self.inner.complete()

    def save_to_snapshot(self) -> bool:
        return self.inner.save_to_snapshot()

    def snapshot_commit_prepare(self) -> bool:
        return self.inner.snapshot_commit_prepare()

    def snapshot_commit_finish(self, success: bool) -> bool:
        return self.inner.snapshot_commit_finish(success)

    def restore_from_snapshot(self, inbox: Inbox) -> None:
        self.inner.restore_from_snapshot(inbox)

    def finish_snapshot_restore(self) -> bool:
        return self.inner.finish_snapshot_restore()

    def close(self) -> None:
        self.inner.close()
