"""ProcessorTasklet: drives one processor instance, one bounded step per call.

Each call first moves the outbox's full buckets to the outbound edges; while any
output is blocked the processor is not called (backpressure). Otherwise it does one
step of its state: process an inbox batch, hand a watermark over, complete an edge,
complete the processor, or emit DONE. Inputs are consumed in edge priority order.
"""
from __future__ import annotations

import enum
import logging

from jetmq.core.inbox_outbox import DEFAULT_OUTBOX_CAPACITY, Inbox, Outbox
from jetmq.core.markers import DONE_ITEM, Watermark
from jetmq.core.processor import Processor, ProcessorContext, Progress
from jetmq.member.engine.queues import Event, InputStream
from jetmq.member.engine.routing import OutboundEdge

log = logging.getLogger(__name__)

_NO_WATERMARK = -(1 << 62)
_ENDED = 1 << 62


class TaskletState(enum.Enum):
    PROCESS_INPUT = "taking input batches and passing them to process()"
    PROCESS_WATERMARK = "passing a coalesced watermark to try_process_watermark()"
    COMPLETE_EDGE = "an input has ended: calling complete_edge()"
    COMPLETE = "every input has ended: calling complete()"
    EMIT_DONE = "offering DONE to every output"
    END = "finished"


_TRANSITIONS = {
    TaskletState.PROCESS_INPUT: {TaskletState.PROCESS_WATERMARK, TaskletState.COMPLETE_EDGE, TaskletState.COMPLETE},
    TaskletState.PROCESS_WATERMARK: {TaskletState.PROCESS_INPUT},
    TaskletState.COMPLETE_EDGE: {TaskletState.PROCESS_INPUT, TaskletState.COMPLETE},
    TaskletState.COMPLETE: {TaskletState.EMIT_DONE},
    TaskletState.EMIT_DONE: {TaskletState.END},
    TaskletState.END: set(),
}


class ProcessorTasklet:
    def __init__(self, processor: Processor, context: ProcessorContext, inputs: list[InputStream],
                 outputs: list[OutboundEdge], outbox_capacity: int = DEFAULT_OUTBOX_CAPACITY):
        self.processor = processor
        self.context = context
        self.name = f"{context.vertex_name}#{context.global_index}"
        self.where = f"ProcessorTasklet{{{self.name}}}"  # how failure texts name it, as Jet's
        self.outbox = Outbox(len(outputs), outbox_capacity)
        self._outputs = outputs
        self._inbox = Inbox()
        self._inbox_ordinal = -1
        self._streams = sorted(inputs, key=lambda s: (s.priority, s.ordinal))
        self._pending: tuple[Event, InputStream] | None = None
        self._watermark = _NO_WATERMARK
        self._completing_ordinal = -1
        self._rotation = 0
        self.state = TaskletState.PROCESS_INPUT if self._streams else TaskletState.COMPLETE

    def init(self) -> None:
        self.processor.init(self.outbox, self.context)

    def _transition(self, new: TaskletState) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise RuntimeError(f"tasklet {self.name}: cannot go from {self.state.name} to {new.name}")
        self.state = new

    # ------------------------------------------------------------------ one step

    def call(self) -> Progress:
        progress = self._flush()
        if self.outbox.total_size():
            return Progress.of(progress, False)
        state = self.state
        if state is TaskletState.PROCESS_INPUT:
            progress |= self._process_input()
        elif state is TaskletState.PROCESS_WATERMARK:
            if self.processor.try_process_watermark(Watermark(self._watermark)):
                self._transition(TaskletState.PROCESS_INPUT)
            progress = True
        elif state is TaskletState.COMPLETE_EDGE:
            if self.processor.complete_edge(self._completing_ordinal):
                self._transition(TaskletState.COMPLETE if self._all_inputs_done() else TaskletState.PROCESS_INPUT)
            progress = True
        elif state is TaskletState.COMPLETE:
            before = self.outbox.total_size()
            if self.processor.complete():
                self._transition(TaskletState.EMIT_DONE)
                progress = True
            else:
                progress |= self.outbox.total_size() > before
        elif state is TaskletState.EMIT_DONE:
            if self.outbox.offer(DONE_ITEM):
                self._transition(TaskletState.END)
            progress = True
        if self.state is TaskletState.END:
            self._flush()
            if not self.outbox.total_size():
                return Progress.DONE
        return Progress.of(progress, False)

    def _flush(self) -> bool:
        outbox = self.outbox
        moved = False
        for ordinal, edge in enumerate(self._outputs):
            if outbox.bucket_size(ordinal) and edge.has_room():
                edge.push(outbox.drain_bucket(ordinal))
                moved = True
        return moved

    def _process_input(self) -> bool:
        inbox = self._inbox
        if inbox:
            before = len(inbox)
            self.processor.process(self._inbox_ordinal, inbox)
            return len(inbox) < before or bool(self.outbox.total_size())
        if self._pending is not None:
            return self._on_event(*self._pending)
        return self._take_batch()

    def _take_batch(self) -> bool:
        active = self._active_group()
        if not active:
            self._transition(TaskletState.COMPLETE)
            return True
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
                self._inbox_ordinal = stream.ordinal
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

    def _all_inputs_done(self) -> bool:
        return all(s.is_done for s in self._streams)

    def _on_event(self, event: Event, stream: InputStream) -> bool:
        """A watermark or an input's end, after the items that came before it.

        The watermark coalesced over all inputs goes first; an ended input no longer
        holds it back. A DONE stays pending until that watermark is handed over.
        """
        low = min((_ENDED if s.is_done else s.watermark) for s in self._streams)
        if self._watermark < low < _ENDED:
            self._watermark = low
            self._transition(TaskletState.PROCESS_WATERMARK)
            if event is not Event.DONE:
                self._pending = None
            return True
        self._pending = None
        if event is Event.DONE:
            self._completing_ordinal = stream.ordinal
            self._transition(TaskletState.COMPLETE_EDGE)
        return True

    def close(self) -> None:
        self.processor.close()

    def __repr__(self) -> str:
        return f"ProcessorTasklet({self.name}, {self.state.name})"
