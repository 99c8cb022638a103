"""Helpers for tests of jetmq and of users' own jobs."""
from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")

#: How often wait_until re-checks its condition.
POLL_INTERVAL_S = 0.01


def wait_until(condition: Callable[[], T], timeout_s: float, message: str | Callable[[], str]) -> T:
    """Poll ``condition`` until it returns a truthy value, which is returned.

    Raises AssertionError with ``message`` (a string, or a callable giving one, to
    describe the state at the time of failure) after ``timeout_s`` seconds.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout_s:.1f} s: {text}")
        time.sleep(POLL_INTERVAL_S)


# ------------------------------------------------------------------------------------
# Sources and sinks for exactly-once tests (and the chaos script): a paced, replayable
# stream of per-key sequence numbers, a list sink that commits with snapshots, and the
# check that every key's sequence came through exactly once.

import dataclasses  # noqa: E402
from collections import Counter  # noqa: E402

from jetmq.core import DAG, BroadcastKey, Edge, Processor  # noqa: E402


class SequenceSource(Processor):
    """Emits ``(key, seq)``: item i is ``(i % keys, i // keys)``, ``per_second`` of them a
    second, forever (or ``limit`` in all). Only processor 0 emits; its offset is saved
    in snapshots, so a restored job goes on exactly where the snapshot left off."""

    def __init__(self, keys: int, per_second: int, limit: int | None = None):
        self.keys, self.per_second, self.limit = keys, per_second, limit
        self.next = 0

    def init_hook(self):
        self._start = time.monotonic()
        self._emitted_since_start = 0
        self._active = self.context.global_index == 0

    def complete(self):
        if not self._active:
            return True
        due = int((time.monotonic() - self._start) * self.per_second) - self._emitted_since_start
        if self.limit is not None:
            due = min(due, self.limit - self.next)
        if due > 0:
            keys, first = self.keys, self.next
            taken = self.outbox.offer_many((i % keys, i // keys) for i in range(first, first + due))
            self.next += taken
            self._emitted_since_start += taken
        return self.limit is not None and self.next >= self.limit

    def next_deadline(self):
        """When the next item is due (the member sleeps until then)."""
        return self._start + (self._emitted_since_start + 1) / self.per_second

    def save_to_snapshot(self):
        return self.outbox.offer_to_snapshot(BroadcastKey("sequence-source-offset"), self.next)

    def state_after_complete(self):
        return [(BroadcastKey("sequence-source-offset"), self.next)] if self._active else []

    def restore_from_snapshot(self, inbox):
        for key, value in inbox.take():
            if key == BroadcastKey("sequence-source-offset"):
                self.next = value


class CommittingListSink(Processor):
    """Adds items to the named list; under exactly-once, items become visible only when
    the snapshot after them commits (or the job completes), so a restart never shows
    an item twice. Otherwise items are added at once (at-least-once)."""

    def __init__(self, name: str):
        self.name = name

    def process(self, ordinal, inbox):
        items = inbox.take()
        context = self.context
        snapshots = context.snapshot_context
        if snapshots.exactly_once:
            context.services.stage_list_add_all(context.execution_id, snapshots.current_snapshot_id + 1,
                                                self.name, items)
        else:
            context.services.list_add_all(self.name, items)


def sequence_dag(list_name: str, keys: int = 10, per_second: int = 2000, limit: int | None = None) -> DAG:
    """SequenceSource -> (partitioned by key, distributed) -> CommittingListSink."""
    dag = DAG()
    source = dag.new_vertex("sequence-source", lambda: SequenceSource(keys, per_second, limit))
    sink = dag.new_vertex("committing-list-sink", lambda: CommittingListSink(list_name))
    dag.edge(Edge.between(source, sink).distributed().partitioned(_first))
    return dag


def _first(item):
    return item[0]


@dataclasses.dataclass(frozen=True)
class SequenceVerdict:
    keys: int
    items: int  # distinct (key, seq) pairs seen
    lost: int  # sequence numbers missing below a key's highest
    duplicated: int  # extra copies

    @property
    def exactly_once(self) -> bool:
        return self.lost == 0 and self.duplicated == 0


def verify_sequences(items) -> SequenceVerdict:
    """Check that every key's sequence numbers are 0..n-1, each exactly once."""
    copies = Counter(items)
    by_key: dict = {}
    for key, seq in copies:
        by_key.setdefault(key, []).append(seq)
    lost = sum(max(seqs) + 1 - len(seqs) for seqs in by_key.values())
    duplicated = sum(count - 1 for count in copies.values())
    return SequenceVerdict(len(by_key), len(copies), lost, duplicated)
