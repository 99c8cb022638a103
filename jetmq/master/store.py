"""Named maps and lists held by the master (Jet's IMap and IList), as serialized bytes.

The master runs no user code, so it never unpickles a user's keys or values: a map
holds pickled keys and values, keyed by the pickled key's bytes (as Hazelcast's IMap
compares keys in serialized form: equal keys must serialize equally, which holds for
str, int, tuples of them and most plain data). Members send batches of them as
:func:`jetmq.protocol.pack_serialized` blobs.
"""
from __future__ import annotations

from jetmq.errors import JetError
from jetmq.protocol import pack_serialized, unpack_serialized


class NamedStore:
    """The cluster's named maps and lists, in the master's memory."""

    def __init__(self):
        self._maps: dict[str, dict[bytes, bytes]] = {}
        self._lists: dict[str, list[bytes]] = {}

    def map_put_all(self, name: str, entries_blob: bytes) -> None:
        entries = unpack_serialized(entries_blob)
        if not all(isinstance(e, tuple) and len(e) == 2 and all(isinstance(b, bytes) for b in e) for e in entries):
            raise JetError(f"map '{name}': an entry is not a pair of serialized key and value")
        self._maps.setdefault(name, {}).update(entries)

    def list_add_all(self, name: str, items_blob: bytes) -> None:
        items = unpack_serialized(items_blob)
        if not all(isinstance(item, bytes) for item in items):
            raise JetError(f"list '{name}': an item is not serialized")
        self._lists.setdefault(name, []).extend(items)

    def map_entries_blob(self, name: str) -> bytes:
        return pack_serialized(list(self._maps.get(name, {}).items()))

    def list_items_blob(self, name: str) -> bytes:
        return pack_serialized(self._lists.get(name, []))


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

    def _record(self, name: str) -> ObservableRecord:
        return self._records.setdefault(name, ObservableRecord())

    def attach(self, name: str, job_id: int) -> None:
        self._record(name).attach(job_id)

    def publish(self, name: str, items_blob: bytes) -> None:
        items = unpack_serialized(items_blob)
        if not all(isinstance(item, bytes) for item in items):
            raise JetError(f"observable '{name}': an item is not serialized")
        self._record(name).publish(items)

    def job_ended(self, job_id: int, error: str | None) -> None:
        for record in self._records.values():
            if record.job_id == job_id:
                record.done, record.error = True, error

    def read(self, name: str, from_seq: int, max_items: int):
        record = self._record(name)
        first, items, done = record.read(from_seq, max_items)
        return first, pack_serialized(items), done, record.error if done else None
