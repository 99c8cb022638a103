"""The Processor contract, the context a processor runs in, and tasklet progress values."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from jetmq.core.inbox_outbox import Inbox, Outbox
from jetmq.core.markers import Watermark
from jetmq.core.snapshot import SnapshotContext

__all__ = ["DEFAULT_POLL_S", "Processor", "ProcessorContext", "Progress"]

DEFAULT_POLL_S = 0.01
"""How often the engine calls again a processor that waits for time (its complete() or
try_process() returned without progress) but does not say until when (`next_deadline`)."""


class Progress(IntEnum):
    """What one step of a tasklet achieved; the member's loop sleeps only when no
    tasklet made progress."""

    NO_PROGRESS = 0
    """Nothing moved (input empty or output full); call again later."""
    MADE_PROGRESS = 1
    """Some items moved or some work was done; more remains."""
    DONE = 2
    """The tasklet has finished for good; do not call it again."""

    @staticmethod
    def of(made_progress: bool, done: bool) -> Progress:
        """DONE if `done` (whether or not this step moved anything), else by `made_progress`."""
        if done:
            return Progress.DONE
        return Progress.MADE_PROGRESS if made_progress else Progress.NO_PROGRESS

    @property
    def made_progress(self) -> bool:
        return self is not Progress.NO_PROGRESS

    @property
    def is_done(self) -> bool:
        return self is Progress.DONE


def _default_logger() -> logging.Logger:
    return logging.getLogger("jetmq.processor")


@dataclass(frozen=True, slots=True)
class ProcessorContext:
    """Where a processor instance runs; built by the member for every instance.

    The defaults describe the only processor of a one-member job, for unit tests.
    """

    vertex_name: str
    global_index: int = 0
    """Index among all processors of the vertex in the cluster: member_index *
    local_parallelism + local_index."""
    local_index: int = 0
    """Index among the vertex's processors on this member."""
    total_parallelism: int = 1
    local_parallelism: int = 1
    member_index: int = 0
    member_count: int = 1
    job_id: int = 0
    execution_id: int = 0
    processing_guarantee: str = "NONE"
    """"NONE", "AT_LEAST_ONCE" or "EXACTLY_ONCE"."""
    logger: logging.Logger = field(default_factory=_default_logger)
    owned_partitions: frozenset[int] = frozenset()
    """Partitions whose keys this processor receives on a distributed partitioned edge
    and whose keyed state it restores (see `jetmq.core.partition`)."""
    services: object = None
    """The cluster's services for sources and sinks (named maps and lists on the
    master); None when a processor runs outside a cluster, as in unit tests."""
    snapshot_context: SnapshotContext = field(default_factory=SnapshotContext)
    """Which snapshot is being taken (mutable: the engine updates it)."""
    metrics: dict = field(default_factory=dict)
    """The processor's own counters by name (e.g. "lateEventsDropped"), mutable; the
    member logs them when the execution ends."""


class Processor:
    """Base class of every processor: the unit of work of one vertex instance.

    Contract (Jet's), which every subclass must keep:

    - **Never block.** Processors run cooperatively, many in one loop of one member
      process: no sleeping, no waiting on I/O or locks, and each call does a bounded
      amount of work (about one inbox batch), then returns.
    - **Respect backpressure.** As soon as `outbox.offer()` returns False (or
      `offer_many()` takes fewer items than offered), stop and return. The engine
      drains the outbox and calls the same method again; the processor then offers
      the same item again. Nothing may be lost or emitted twice.
    - **Remove what you have processed.** `process` must remove from the inbox the
      items it handled; items left there are passed, with the same ordinal, to the
      next `process` call. The engine refills the inbox (from any input) only once
      the processor has emptied it, so a processor may keep per-item state (such as
      FlatMapProcessor's pending results) for the item at the head of the inbox.
    - Methods returning bool return True when finished and False to be called again.
    - An exception from any method fails the job; its text names the vertex.

    Call order: `init`; on a restored job `restore_from_snapshot` (while entries
    remain) then `finish_snapshot_restore`; then, repeatedly, `process` for each
    non-empty input, `try_process` when the current input batch is exhausted,
    `try_process_watermark` for each watermark, `save_to_snapshot` /
    `snapshot_commit_prepare` / `snapshot_commit_finish` around each snapshot;
    `complete_edge(ordinal)` once an input has delivered everything; `complete` once
    all inputs have (at once for a source); finally `close`, always, also on failure.

    Inputs are consumed in edge priority order: no item of a lower priority edge (a
    higher `Edge.priority` value) is passed to `process` before every edge of higher
    priority has completed.
    """

    is_cooperative: bool = True
    """False for a processor that must block (it then gets a thread of its own)."""

    outbox: Outbox
    context: ProcessorContext

    def init(self, outbox: Outbox, context: ProcessorContext) -> None:
        """Keep the outbox and context, then call `init_hook`. Called once, first."""
        self.outbox = outbox
        self.context = context
        self.init_hook()

    def init_hook(self) -> None:
        """Override point for set-up that needs `self.outbox` or `self.context`."""

    def process(self, ordinal: int, inbox: Inbox) -> None:
        """Handle the items in `inbox`, which came on input `ordinal`; never called
        with an empty inbox. The default fails: a vertex with inputs must override it.
        """
        raise NotImplementedError(
            f"vertex {self._vertex_name()!r} received items on ordinal {ordinal} but its "
            f"processor {type(self).__qualname__} does not implement process()"
        )

    def try_process_watermark(self, watermark: Watermark) -> bool:
        """Handle a watermark coalesced from all inputs. The default forwards it to
        every output and returns whether the outbox took it.
        """
        return self.outbox.offer(watermark)

    def try_process(self) -> bool:
        """Work to do without input (timers, flushing); called whenever the current
        input batch is exhausted. False means "call me again before anything else".
        """
        return True

    def complete_edge(self, ordinal: int) -> bool:
        """Input `ordinal` has delivered all its items; False to be called again."""
        return True

    def complete(self) -> bool:
        """All inputs are done (a source: called at once and repeatedly). Emit what is
        left, returning False while more remains; True when the processor is finished.
        """
        return True

    def save_to_snapshot(self) -> bool:
        """Offer the processor's state with `outbox.offer_to_snapshot(key, value)`;
        False (with the outbox full) to be called again to save the rest.
        """
        return True

    def snapshot_commit_prepare(self) -> bool:
        """Phase 1 of a snapshot, after `save_to_snapshot`: prepare external
        transactions (two-phase-commit sinks). False to be called again.
        """
        return True

    def snapshot_commit_finish(self, success: bool) -> bool:
        """Phase 2: commit (`success`) or roll back what phase 1 prepared. False to be
        called again.
        """
        return True

    def restore_from_snapshot(self, inbox: Inbox) -> None:
        """Take (key, value) state entries from `inbox` and rebuild state from them;
        never called with an empty inbox. The default fails: a processor that saves
        state must override it.
        """
        raise NotImplementedError(
            f"vertex {self._vertex_name()!r} received snapshot entries but its processor "
            f"{type(self).__qualname__} does not implement restore_from_snapshot()"
        )

    def state_after_complete(self) -> list[tuple[Any, Any]]:
        """State entries that stand for this processor in every snapshot taken after
        complete() returned True (it takes part in none any more). A source returns
        its final position, so that a job restored from such a snapshot does not read
        it again; the default, nothing, suits a processor that emitted all its state.
        """
        return []

    def finish_snapshot_restore(self) -> bool:
        """All entries were restored; False to be called again."""
        return True

    def next_deadline(self) -> float | None:
        """When this processor next needs a call although no input arrives: a
        `time.monotonic()` deadline, or None when only input (or room in its outbox)
        can give it work. The member's loop sleeps until the earliest deadline of its
        processors, a message or a batch, so a waiting job costs nothing.

        Asked only after a call that moved nothing, while the processor waits in
        `complete()` (a source) or between input batches (`try_process()` overridden,
        or items left in the inbox) and its outbox is empty. The default, for a
        processor that declares nothing: DEFAULT_POLL_S from now, so that it is still
        called again soon. A clock-driven processor returns when its next item or
        watermark is due; one that works only on input returns None.
        """
        return time.monotonic() + DEFAULT_POLL_S

    def close(self) -> None:
        """Release resources. Called once at the end, whether the job succeeded or not."""

    def _vertex_name(self) -> str:
        context = getattr(self, "context", None)
        return context.vertex_name if context is not None else "<not initialised>"
