"""ProcessorTasklet: drives one processor instance, one bounded step per call.

Each call first moves the outbox's full buckets to the outbound edges; while any
output is blocked the processor is not called (backpressure). Otherwise it does one
step of its state: restore state, process an inbox batch, hand a watermark over,
complete an edge, take a snapshot, complete the processor, or emit DONE; and, in the
same call, the few steps that follow a batch without input (the watermark or end of
input behind it), so that a batch and its watermark cross a tasklet in one step of
the member's loop. Inputs are consumed in edge priority order.

Snapshots (Chandy-Lamport, as Jet): a tasklet with live inputs takes snapshot k when
every input has delivered barrier k (InputStream aligns them under exactly-once); a
tasklet with no live input (a source, or one whose inputs have all ended) takes it
when the execution requests it. It saves the processor's state (SAVE_SNAPSHOT, until
save_to_snapshot() says all is offered), prepares commits (SNAPSHOT_COMMIT_PREPARE,
until snapshot_commit_prepare() says ready; the state is not saved again meanwhile),
and forwards the barrier. After a terminal barrier it does nothing more.
"""
from __future__ import annotations

import enum
import logging
import math
import time
from typing import Callable, Iterable

from jetmq.core.inbox_outbox import DEFAULT_OUTBOX_CAPACITY, Inbox, Outbox
from jetmq.core.markers import DONE_ITEM, MARKER_TYPES, SnapshotBarrier, Watermark
from jetmq.core.metrics_context import CURRENT
from jetmq.core.processor import Processor, ProcessorContext, Progress
from jetmq.member.engine.queues import ENDED, NO_WATERMARK, Event, InputStream
from jetmq.member.engine.routing import OutboundEdge

log = logging.getLogger(__name__)

#: State entries a processor may offer per save_to_snapshot() call; large, so that the
#: entries of a call group into few pickles per partition.
SNAPSHOT_BUCKET_CAPACITY = 32_768
#: Restored state entries handed to restore_from_snapshot() per call (a few ms of work).
RESTORE_BATCH_ENTRIES = 8_192


class TaskletState(enum.Enum):
    RESTORE = "passing snapshot entries to restore_from_snapshot()"
    FINISH_RESTORE = "calling finish_snapshot_restore()"
    PROCESS_INPUT = "taking input batches and passing them to process()"
    PROCESS_WATERMARK = "passing a coalesced watermark to try_process_watermark()"
    COMPLETE_EDGE = "an input has ended: calling complete_edge()"
    COMPLETE = "every input has ended: calling complete()"
    SAVE_SNAPSHOT = "calling save_to_snapshot() until it has offered all the state"
    SNAPSHOT_COMMIT_PREPARE = "calling snapshot_commit_prepare() until it is ready"
    EMIT_BARRIER = "offering the snapshot barrier to every output"
    AFTER_TERMINAL = "a terminal snapshot was taken: waiting for the execution to stop"
    EMIT_DONE = "offering DONE to every output"
    END = "finished"


T = TaskletState
#: States that follow a processed batch at once and take no input: a call goes on
#: into them (up to MAX_FOLLOW_UPS times) rather than leaving them to the next step.
_FOLLOW_UP_STATES = frozenset({T.PROCESS_WATERMARK, T.COMPLETE_EDGE, T.EMIT_DONE})
#: Most follow-up steps one call makes after its first (a watermark's are two: take
#: it, hand it over; an ended input's three).
MAX_FOLLOW_UPS = 3
_TRANSITIONS = {
    T.RESTORE: {T.FINISH_RESTORE},
    T.FINISH_RESTORE: {T.PROCESS_INPUT, T.COMPLETE},
    T.PROCESS_INPUT: {T.PROCESS_WATERMARK, T.COMPLETE_EDGE, T.COMPLETE, T.SAVE_SNAPSHOT},
    T.PROCESS_WATERMARK: {T.PROCESS_INPUT},
    T.COMPLETE_EDGE: {T.PROCESS_INPUT, T.COMPLETE},
    T.COMPLETE: {T.EMIT_DONE, T.SAVE_SNAPSHOT},
    T.SAVE_SNAPSHOT: {T.SNAPSHOT_COMMIT_PREPARE},
    T.SNAPSHOT_COMMIT_PREPARE: {T.EMIT_BARRIER},
    T.EMIT_BARRIER: {T.PROCESS_INPUT, T.COMPLETE, T.AFTER_TERMINAL},
    T.AFTER_TERMINAL: set(),
    T.EMIT_DONE: {T.END},
    T.END: set(),
}


class SnapshotRequest:
    """The snapshot the execution has asked its tasklets for (shared by all of them)."""

    def __init__(self):
        self.snapshot_id = -1
        self.terminal = False


class ProcessorTasklet:
    def __init__(self, processor: Processor, context: ProcessorContext, inputs: list[InputStream],
                 outputs: list[OutboundEdge], outbox_capacity: int = DEFAULT_OUTBOX_CAPACITY,
                 snapshot_request: SnapshotRequest | None = None,
                 on_snapshot_entries: Callable[[list], None] | None = None,
                 on_snapshot_done: Callable[["ProcessorTasklet", int], None] | None = None,
                 restored_entries: list | None = None, restored_batches: Iterable[list] | None = None):
        self.processor = processor
        self.context = context
        self.name = f"{context.vertex_name}#{context.global_index}"
        self.where = f"ProcessorTasklet{{{self.name}}}"  # how failure texts name it, as Jet's
        self.outbox = Outbox(len(outputs), outbox_capacity, SNAPSHOT_BUCKET_CAPACITY)
        self._outputs = outputs
        self._inbox = Inbox()
        self._inbox_ordinal = -1
        self._streams = sorted(inputs, key=lambda s: (s.priority, s.ordinal))
        self._pending: tuple[Event, InputStream] | None = None
        self._watermark = NO_WATERMARK
        self._completing_ordinal = -1
        self._rotation = 0
        self._request = snapshot_request or SnapshotRequest()
        self._on_entries = on_snapshot_entries or (lambda entries: None)
        self._on_snapshot_done = on_snapshot_done or (lambda tasklet, snapshot_id: None)
        self.last_snapshot_id = -1
        self._barrier: SnapshotBarrier | None = None  # the snapshot being taken
        self._commit: bool | None = None  # a phase-2 outcome to hand to the processor
        # metrics (member/metrics.py reads them): items and batches taken per input ordinal,
        # items emitted per output ordinal and, last, state entries saved to snapshots;
        # counted per batch, markers excluded
        inputs = max((s.ordinal for s in self._streams), default=-1) + 1
        self.received_counts = [0] * inputs
        self.received_batches = [0] * inputs
        self.emitted_counts = [0] * (len(outputs) + 1)
        self.last_forwarded_wm = NO_WATERMARK
        #: the last step ended at a marker: it handed a watermark over or flushed a batch
        #: that ends with one (what comes after it waits for the next step otherwise)
        self._after_marker = False
        self._input_queues = [queue for stream in self._streams for queue in stream.queues]
        #: waiting for input with nothing else to do: calls before this monotonic time
        #: (inf: none is due) return at once while no input is queued (see _sleep_if_idle)
        self._asleep_until: float | None = None
        # the state to restore: (key, value) entries, as one list or as batches made on demand
        # (the execution unpickles them then), handed over RESTORE_BATCH_ENTRIES at a time so
        # that a member restoring millions of keys keeps its loop turning (heartbeats, peers)
        if restored_entries:
            restored_batches = (restored_entries[i:i + RESTORE_BATCH_ENTRIES]
                                for i in range(0, len(restored_entries), RESTORE_BATCH_ENTRIES))
        #: try_process() may have work without input (timers): then ask next_deadline()
        self._overrides_try_process = type(processor).try_process is not Processor.try_process
        self._restoring = iter(restored_batches) if restored_entries or restored_batches is not None else None
        if self._restoring is not None:
            self.state = T.RESTORE
        else:
            self.state = T.PROCESS_INPUT if self._streams else T.COMPLETE

    def init(self) -> None:
        CURRENT.context = self.context
        self.processor.init(self.outbox, self.context)

    def _transition(self, new: TaskletState) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise RuntimeError(f"tasklet {self.name}: cannot go from {self.state.name} to {new.name}")
        self.state = new

    def commit(self, success: bool) -> None:
        """Phase 2 of the last snapshot: the processor learns it at its next call."""
        self._commit = success
        self._asleep_until = None

    # ------------------------------------------------------------------ one step

    def call(self) -> Progress:
        if self._asleep_until is not None:
            if time.monotonic() < self._asleep_until and not any(self._input_queues):
                return Progress.NO_PROGRESS
            self._asleep_until = None
        CURRENT.context = self.context  # user metrics count for this processor
        if self._commit is not None:
            if not self.processor.snapshot_commit_finish(self._commit):
                return Progress.MADE_PROGRESS
            self._commit = None
        progress = self._flush()
        if self.outbox.total_size():
            return Progress.of(progress, False)
        for _ in range(MAX_FOLLOW_UPS + 1):
            self._after_marker = False
            moved = self._advance()
            # what this turn emitted goes downstream now, a partial batch too: the consumer
            # runs later in the same step rather than a step later
            if self.outbox.total_size():
                moved |= self._flush()
            progress |= moved
            if not moved or self.outbox.total_size() or not self._follow_up_due():
                break
        if self.state is T.END and not self.outbox.total_size():
            return Progress.DONE
        if not progress:
            self._sleep_if_idle()
        return Progress.of(progress, False)

    def _sleep_if_idle(self) -> None:
        """After a call that moved nothing: a processor that only waits for input (no
        inbox left, no event pending, no output held back) is not called again until
        input is queued or its next_deadline() (try_process() has work then): steps of
        the loop that other tasklets make cost it nothing."""
        if (self.state is T.PROCESS_INPUT and not self._inbox and self._pending is None and self._commit is None
                and not self.outbox.total_size() and not any(self._input_queues)
                and all(stream.barrier is None for stream in self._streams)):
            deadline = self.processor.next_deadline() if self._overrides_try_process else None
            self._asleep_until = math.inf if deadline is None else deadline

    def _follow_up_due(self) -> bool:
        """The step just made left work that it would be a waste to leave to the next
        step of the loop: the watermark or end of input that followed the batch just
        processed, or what comes after a marker (a marker ends a batch, so a source's
        watermark and the item behind it leave in two flushes, and arrive as two
        batches). Doing it in the same call carries items and their watermark through a
        tasklet in one step, not four."""
        if self._pending is not None and not self._inbox:
            return True
        if self._after_marker and self.state in (T.COMPLETE, T.PROCESS_INPUT):
            return True
        return self.state in _FOLLOW_UP_STATES

    def _advance(self) -> bool:
        """One step of the tasklet's state; True if it moved anything."""
        progress = False
        state = self.state
        if state is T.PROCESS_INPUT:
            progress |= self._process_input()
        elif state is T.COMPLETE:
            if self._snapshot_requested():
                self._begin_snapshot(SnapshotBarrier(self._request.snapshot_id, self._request.terminal))
                return True
            before = self.outbox.total_size()
            if self.processor.complete():
                self._transition(T.EMIT_DONE)
                progress = True
            else:
                progress |= self.outbox.total_size() > before
        elif state is T.PROCESS_WATERMARK:
            if self.processor.try_process_watermark(Watermark(self._watermark)):
                self._transition(T.PROCESS_INPUT)
                self._after_marker = True
            progress = True
        elif state is T.COMPLETE_EDGE:
            if self.processor.complete_edge(self._completing_ordinal):
                self._transition(T.COMPLETE if self._all_inputs_done() else T.PROCESS_INPUT)
            progress = True
        elif state is T.SAVE_SNAPSHOT:
            self._save_snapshot()
            progress = True
        elif state is T.SNAPSHOT_COMMIT_PREPARE:
            if self.processor.snapshot_commit_prepare():
                self._transition(T.EMIT_BARRIER)
            progress = True
        elif state is T.EMIT_BARRIER:
            self._emit_barrier()
            progress = True
        elif state is T.RESTORE:
            if self._inbox or self._take_restored():
                self.processor.restore_from_snapshot(self._inbox)
            else:
                self._restoring = None
                self._transition(T.FINISH_RESTORE)
            progress = True
        elif state is T.FINISH_RESTORE:
            if self.processor.finish_snapshot_restore():
                self._transition(T.PROCESS_INPUT if self._streams else T.COMPLETE)
            progress = True
        elif state is T.EMIT_DONE:
            if self.outbox.offer(DONE_ITEM):
                self._transition(T.END)
            progress = True
        return progress

    def wake_at(self) -> float | None:
        """After a step in which nothing moved: when this tasklet needs a call although
        no input, credit or message arrives (a monotonic deadline), or None."""
        if self.outbox.total_size():
            return None  # blocked downstream: a consumer's progress or a credit frees it
        if self._asleep_until is not None:
            return None if self._asleep_until == math.inf else self._asleep_until
        state = self.state
        if state is T.COMPLETE:
            return self.processor.next_deadline()
        if state is T.PROCESS_INPUT:
            if self._inbox or self._overrides_try_process:
                return self.processor.next_deadline()
        return None

    def _flush(self) -> bool:
        outbox = self.outbox
        moved = False
        for ordinal, edge in enumerate(self._outputs):
            if outbox.bucket_size(ordinal) and edge.has_room():
                batch = outbox.drain_bucket(ordinal)
                last = batch[-1]
                if type(last) in MARKER_TYPES:  # a drained bucket ends with its only marker, if any
                    self.emitted_counts[ordinal] += len(batch) - 1
                    self._after_marker = True
                    if type(last) is Watermark:
                        self.last_forwarded_wm = last.timestamp
                else:
                    self.emitted_counts[ordinal] += len(batch)
                edge.push(batch)
                moved = True
        return moved

    @property
    def coalesced_watermark(self) -> int:
        """The watermark coalesced over every input (NO_WATERMARK: none yet)."""
        return self._watermark

    @property
    def input_streams(self) -> list[InputStream]:
        return self._streams

    # ------------------------------------------------------------------ input

    def _process_input(self) -> bool:
        inbox = self._inbox
        if inbox:
            return self._process_inbox()
        if self._pending is not None:
            return self._on_event(*self._pending)
        if self._barrier_collected():
            self._begin_snapshot(next(s.barrier for s in self._streams if s.barrier is not None))
            return True
        if self._all_inputs_done() and self._snapshot_requested():
            self._begin_snapshot(SnapshotBarrier(self._request.snapshot_id, self._request.terminal))
            return True
        if not self._take_batch():
            return False
        if inbox:  # a batch was taken: process it in the same call
            self._process_inbox()
        return True

    def _process_inbox(self) -> bool:
        inbox = self._inbox
        before = len(inbox)
        self.processor.process(self._inbox_ordinal, inbox)
        return len(inbox) < before or bool(self.outbox.total_size())

    def _take_batch(self) -> bool:
        active = self._active_group()
        if not active:
            self._transition(T.COMPLETE)
            return True
        if self._hunting(active):
            barrier = next(s.barrier for s in self._streams if s.barrier is not None)
            return any([s.hunt_barrier(barrier) for s in self._streams if not s.is_done and s not in active])
        count = len(active)
        for step in range(count):
            stream = active[(self._rotation + step) % count]
            items: list = []
            event = stream.drain_to(items)
            if event is Event.NOTHING:
                continue
            self._rotation += step + 1
            if items:
                self._inbox.add_batch(items)
                self._inbox_ordinal = ordinal = stream.ordinal
                self.received_counts[ordinal] += len(items)
                self.received_batches[ordinal] += 1
            if event is not Event.ITEMS:
                self._pending = (event, stream)
            return True
        before = self.outbox.total_size()
        self.processor.try_process()
        return self.outbox.total_size() > before

    def _active_group(self) -> list[InputStream]:
        """The live streams of the highest priority (lowest value) that still has any."""
        live = [s for s in self._streams if not s.is_done]
        if not live:
            return []
        top = live[0].priority
        return [s for s in live if s.priority == top]

    def _hunting(self, active: list[InputStream]) -> bool:
        """The active streams hold back after a barrier that lower-priority ones still owe."""
        return all(s.holding_back for s in active)

    def _all_inputs_done(self) -> bool:
        return all(s.is_done for s in self._streams)

    def _on_event(self, event: Event, stream: InputStream) -> bool:
        """A watermark or an input's end, after the items that came before it.

        The watermark coalesced over all inputs goes first; an ended input no longer
        holds it back. A DONE stays pending until that watermark is handed over.
        """
        low = min((ENDED if s.is_done else s.watermark) for s in self._streams)
        if self._watermark < low < ENDED:
            self._watermark = low
            self._transition(T.PROCESS_WATERMARK)
            if event is not Event.DONE:
                self._pending = None
            return True
        self._pending = None
        if event is Event.DONE:
            self._completing_ordinal = stream.ordinal
            self._transition(T.COMPLETE_EDGE)
        return True

    # ------------------------------------------------------------------ snapshots

    def _barrier_collected(self) -> bool:
        """Every input has delivered the current barrier (ended inputs count as delivered)."""
        streams = self._streams
        return any(s.barrier is not None for s in streams) and all(
            s.is_done or s.barrier_complete for s in streams)

    def _snapshot_requested(self) -> bool:
        return self._request.snapshot_id > self.last_snapshot_id

    def _begin_snapshot(self, barrier: SnapshotBarrier) -> None:
        self._barrier = barrier
        self.context.snapshot_context.current_snapshot_id = barrier.snapshot_id
        self._transition(T.SAVE_SNAPSHOT)

    def _save_snapshot(self) -> None:
        done = self.processor.save_to_snapshot()
        entries = self.outbox.drain_snapshot_bucket()
        if entries:
            self.emitted_counts[-1] += len(entries)
            self._on_entries(entries)
        if done:
            self._transition(T.SNAPSHOT_COMMIT_PREPARE)

    def _emit_barrier(self) -> None:
        barrier = self._barrier
        if not self.outbox.offer(barrier):
            return
        self._barrier = None
        self.last_snapshot_id = barrier.snapshot_id
        for stream in self._streams:
            stream.release_barrier()
        self._on_snapshot_done(self, barrier.snapshot_id)
        if barrier.is_terminal:
            self._transition(T.AFTER_TERMINAL)
        else:
            self._transition(T.PROCESS_INPUT if not self._all_inputs_done() else T.COMPLETE)

    def _take_restored(self) -> bool:
        """Move the next restored entries (RESTORE_BATCH_ENTRIES or so) into the inbox; False
        when there are none left."""
        inbox, taken = self._inbox, 0
        for batch in self._restoring:
            if batch:
                inbox.add_batch(batch)
                taken += len(batch)
                if taken >= RESTORE_BATCH_ENTRIES:
                    break
        return taken > 0

    def close(self) -> None:
        CURRENT.context = self.context
        self.processor.close()

    def __repr__(self) -> str:
        inputs = ", ".join(f"{s.ordinal}:{[q.size for q in s.queues]}{'/barrier' if s.barrier else ''}"
                           for s in self._streams)
        return (f"ProcessorTasklet({self.name}, {self.state.name}, outbox={self.outbox.total_size()}, "
                f"last_snapshot={self.last_snapshot_id}, inputs=[{inputs}])")
