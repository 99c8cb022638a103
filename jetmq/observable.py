"""Observables: results a job publishes with ``Sinks.observable(name)``, read as they arrive.

An observable belongs to the cluster (the master holds its items) and ends when the
job writing it ends: iteration then stops, or raises the job's error if it failed.
Delivery is at-least-once: after a restart of the job, results may repeat.
"""
from __future__ import annotations

import threading
from typing import Callable, Iterator

from jetmq import protocol as p
from jetmq import serialization
from jetmq.errors import CancellationError, ClusterUnreachableError, JobFailedError
from jetmq.job_status import CANCELLATION_FAILURE as CANCELLED
from jetmq.requester import Requester

#: How many items one read fetches at most.
READ_BATCH = 1000
#: How long the master holds a read that found nothing new (it answers as soon as items
#: come or the observable ends); then the reader asks again.
WAIT_HOLD_S = 2.0


class Observable:
    def __init__(self, addresses: list[str] | None, name: str, key=None):
        self._addresses = addresses
        self.name = name
        self._key = key  # the cluster key its reader presents

    def __iter__(self) -> Iterator:
        """Every item from the first on; ends when the job ends (raising if it failed)."""
        requester = Requester(self._addresses, key=self._key)
        try:
            seq = 0
            while True:
                reply = _read(requester, self.name, seq)
                items = p.unpack_serialized(reply.items)
                seq = reply.first_seq + len(items)
                for item in items:
                    yield serialization.loads(item)
                if reply.done:
                    if reply.error == CANCELLED:
                        raise CancellationError(f"the job writing observable '{self.name}' was cancelled")
                    if reply.error is not None:
                        raise JobFailedError(reply.error)
                    return
        finally:
            requester.close()

    def add_observer(self, on_next: Callable, on_error: Callable | None = None,
                     on_complete: Callable | None = None) -> threading.Thread:
        """Call ``on_next(item)`` for each item, then ``on_complete()`` or ``on_error(e)``,
        from a daemon thread of its own (returned)."""
        def run():
            try:
                for item in self:
                    on_next(item)
            except Exception as e:
                if on_error is not None:
                    on_error(e)
                return
            if on_complete is not None:
                on_complete()

        thread = threading.Thread(target=run, name=f"jetmq-observer-{self.name}", daemon=True)
        thread.start()
        return thread

    def __repr__(self) -> str:
        return f"Observable({self.name!r})"


def _read(requester: Requester, name: str, seq: int) -> p.ObservableItems:
    """The items from ``seq`` on, waiting (the master pushes them) until there are some or
    the observable ends, WAIT_HOLD_S at most. A connection lost meanwhile falls back to
    one plain read, which raises ClusterUnreachableError if the master stays unreachable."""
    try:
        return requester.request(p.WaitObservable(name, seq, READ_BATCH, int(WAIT_HOLD_S * 1000)),
                                 WAIT_HOLD_S + requester.timeout_s)
    except ClusterUnreachableError:
        return requester.request(p.GetObservable(name, seq, READ_BATCH))
