"""Observables held by the master: the items a job publishes, for clients to read as they come."""
from __future__ import annotations

from jetmq.errors import JetError
from jetmq.protocol import pack_serialized, unpack_serialized


#: Items an observable keeps for readers; older ones are dropped (a slow reader skips them).
OBSERVABLE_CAPACITY = 100_000


class ObservableRecord:
    """The items a job publishes to a named observable, numbered from 0."""

    def __init__(self):
        self.items: list[bytes] = []
        self.first_seq = 0  # sequence number of items[0]
        self.job_id: int | None = None
        self.done = False
        self.error: str | None = None

    def attach(self, job_id: int) -> None:
        """A job writes to this observable (again): it is open until that job ends."""
        self.job_id, self.done, self.error = job_id, False, None

    def publish(self, items: list[bytes]) -> None:
        self.items.extend(items)
        overflow = len(self.items) - OBSERVABLE_CAPACITY
        if overflow > 0:
            del self.items[:overflow]
            self.first_seq += overflow

    def read(self, from_seq: int, max_items: int) -> tuple[int, list[bytes], bool]:
        """(first sequence returned, items, whether the reader has seen the end)."""
        start = max(from_seq, self.first_seq)
        chunk = self.items[start - self.first_seq:start - self.first_seq + max_items]
        at_end = start + len(chunk) >= self.first_seq + len(self.items)
        return start, chunk, self.done and at_end


class ObservableStore:
    def __init__(self):
        self._records: dict[str, ObservableRecord] = {}
        #: ``on_change(name)``: items came, or the observable ended (readers waiting are told)
        self.on_change = lambda name: None

    def _record(self, name: str) -> ObservableRecord:
        return self._records.setdefault(name, ObservableRecord())

    def attach(self, name: str, job_id: int) -> None:
        self._record(name).attach(job_id)  # no news for readers: they wait for items or the end

    def publish(self, name: str, items_blob: bytes) -> None:
        items = unpack_serialized(items_blob)
        if not all(isinstance(item, bytes) for item in items):
            raise JetError(f"observable '{name}': an item is not serialized")
        self._record(name).publish(items)
        self.on_change(name)

    def job_ended(self, job_id: int, error: str | None) -> None:
        for name, record in self._records.items():
            if record.job_id == job_id:
                record.done, record.error = True, error
                self.on_change(name)

    def has_news(self, name: str, from_seq: int) -> bool:
        """A read from ``from_seq`` would give items, or the end."""
        record = self._record(name)
        return record.done or from_seq < record.first_seq + len(record.items)

    def read(self, name: str, from_seq: int, max_items: int):
        record = self._record(name)
        first, items, done = record.read(from_seq, max_items)
        return first, pack_serialized(items), done, record.error if done else None
