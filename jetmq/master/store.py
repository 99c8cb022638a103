"""Named maps and lists held by the master (Jet's IMap and IList), as serialized bytes.

The master runs no user code, so it never unpickles a user's keys or values: a map
holds pickled keys and values, keyed by the pickled key's bytes (as Hazelcast's IMap
compares keys in serialized form: equal keys must serialize equally, which holds for
str, int, tuples of them and most plain data). Members send batches of them as
:func:`jetmq.protocol.pack_serialized` blobs.

With a data dir, every change is appended to ``<data-dir>/structures.log`` (a length,
a CRC-32 and the record) and fsynced, and a master started on the same data dir
replays the log; a torn last record (a crash mid-write) is cut off. The log also
records which snapshot's exactly-once output each job has published, so a restarted
master can publish what a crash interrupted, once.

A change the log cannot take (a full disk, an I/O error) still applies in memory and
waits, in order, for ``flush()`` to log it once the disk takes writes again; until
then ``problem`` says why the store is not durable, and snapshots do not commit.
"""
from __future__ import annotations

import logging
import os
import struct
import zlib
from collections import deque
from pathlib import Path

from jetmq.errors import JetError
from jetmq.master.datadir import atomic_write
from jetmq.master.quarantine import Quarantine
from jetmq.protocol import ProtocolError, pack_serialized, unpack_serialized

log = logging.getLogger(__name__)

_RECORD_HEADER = struct.Struct("!II")  # length, crc32 of the record


class NamedStore:
    """The cluster's named maps and lists, in the master's memory and (with a path) on disk."""

    def __init__(self):
        self._maps: dict[str, dict[bytes, bytes]] = {}
        self._lists: dict[str, list[bytes]] = {}
        self._published: dict[int, int] = {}  # job id -> last snapshot whose output is published
        self._log_path: Path | None = None
        self._log_fd: int | None = None
        self._pending: deque[tuple] = deque()  # changes applied but not yet logged
        self.problem: str | None = None  # why the log cannot be written now

    def open_log(self, path: Path, quarantine: Quarantine | None = None) -> None:
        """Replay the log at ``path`` (if any), then append every change to it. Records
        that cannot be read or applied are kept aside in ``quarantine``."""
        self._log_path = Path(path)
        self._replay(quarantine or Quarantine(self._log_path.parent / "quarantine"))
        self._log_fd = os.open(self._log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    # ------------------------------------------------------------------ changes

    def map_put_all(self, name: str, entries_blob: bytes) -> None:
        self._record(("map", name, entries_blob))

    def list_add_all(self, name: str, items_blob: bytes) -> None:
        self._record(("list", name, items_blob))

    def publish(self, job_id: int, snapshot_id: int, writes: list) -> None:
        """Apply a snapshot's exactly-once output [(kind, name, data)] and remember that it
        is published, in one log record (so a crash publishes it wholly or not at all)."""
        self._record(("publish", job_id, snapshot_id, writes))

    @staticmethod
    def check_write(kind: str, name: str, data: bytes) -> None:
        """A staged write (kind "map" or "list") from a member; JetError if it could never
        be applied. Checked when it arrives, long before it is published."""
        if kind not in ("map", "list"):
            raise JetError(f"a staged write of kind {kind!r}: only 'map' and 'list' exist")
        _decoded((kind, name, data))

    def published_snapshot(self, job_id: int) -> int:
        """The last snapshot whose exactly-once output this store has published (-1: none)."""
        return self._published.get(job_id, -1)

    def _record(self, record: tuple) -> None:
        """Check and apply a change, then log it durably (or keep it for flush() to log).
        JetError, and nothing applied or logged, when the change is malformed."""
        self._apply(_decoded(record))
        self._pending.append(record)
        self.flush()

    @property
    def durable(self) -> bool:
        return not self._pending

    def flush(self) -> None:
        """Log the changes that wait, in order; stop at the first the disk refuses."""
        if self._log_fd is None:
            self._pending.clear()
            return
        while self._pending:
            try:
                self._append(self._pending[0])
            except OSError as e:
                if self.problem is None:
                    log.error("cannot write %s (%s): changes to maps and lists wait in memory until it can be "
                              "written", self._log_path, e.strerror or e)
                self.problem = f"cannot write {self._log_path}: {e.strerror or e}"
                return
            self._pending.popleft()
        if self.problem is not None:
            log.warning("%s can be written again: every change is logged", self._log_path)
            self.problem = None

    def _apply(self, change) -> None:
        """Apply a checked change (see _decoded), live or replayed from the log."""
        kind = change[0]
        if kind == "map":
            self._maps.setdefault(change[1], {}).update(change[2])
        elif kind == "list":
            self._lists.setdefault(change[1], []).extend(change[2])
        else:
            _, job_id, snapshot_id, writes = change
            for write in writes:
                self._apply(write)
            self._published[job_id] = max(snapshot_id, self._published.get(job_id, -1))

    # ------------------------------------------------------------------ the log

    def _append(self, record: tuple) -> None:
        """Write one record whole and fsync it; a failed write leaves no torn record behind."""
        data = pack_serialized(list(record))  # str, int, bytes and lists: loaded with no code run
        frame = _RECORD_HEADER.pack(len(data), zlib.crc32(data)) + data
        fd = self._log_fd
        end = os.lseek(fd, 0, os.SEEK_END)
        try:
            written = 0
            while written < len(frame):
                written += os.write(fd, frame[written:])
            os.fsync(fd)
        except OSError:
            try:
                os.ftruncate(fd, end)  # cut what got in, so later records follow whole ones
            except OSError:
                pass  # replay skips a damaged record and resynchronises on the next good one
            raise

    def _replay(self, quarantine: Quarantine) -> None:
        """Apply every good record of the log. Bytes that fail their checksum are skipped
        up to the next good record (one damaged record never hides the ones after it);
        a record that passes its checksum but cannot be applied is skipped whole. Either
        is kept in the quarantine, and the log is then rewritten with the good records
        only. A torn last record (a crash mid-write) is cut off, and kept aside too."""
        if not self._log_path.exists():
            return
        data = self._log_path.read_bytes()
        good: list[bytes] = []  # the good records' frames, when the log must be rewritten
        bad = 0
        position = 0
        while position < len(data):
            end = _record_end(data, position)
            if end is None:  # damaged bytes: skip to the next record that checks out
                resume = _next_record(data, position + 1)
                reason = ("a torn last record" if resume == len(data)
                          else f"{resume - position} bytes that fail their checksum")
                quarantine.keep(self._log_path.name, data[position:resume], f"{reason} at offset {position} "
                                f"of {self._log_path}")
                bad += 1
                position = resume
                continue
            body = data[position + _RECORD_HEADER.size:end]
            try:
                self._apply(_decoded(unpack_serialized(body)))
            except Exception as e:
                quarantine.keep(self._log_path.name, data[position:end], f"a record at offset {position} of "
                                f"{self._log_path} that cannot be applied: {type(e).__name__}: {e}")
                bad += 1
            else:
                good.append(data[position:end])
            position = end
        if bad:
            atomic_write(self._log_path, b"".join(good))
            log.warning("%s: %d damaged or unusable part(s) kept in the quarantine, %d good records kept",
                        self._log_path, bad, len(good))
        log.info("replayed %d records of %s", len(good), self._log_path)

    def close(self) -> None:
        if self._log_fd is not None:
            os.close(self._log_fd)
            self._log_fd = None

    # ------------------------------------------------------------------ reads

    def map_entries_blob(self, name: str) -> bytes:
        return pack_serialized(list(self._maps.get(name, {}).items()))

    def list_items_blob(self, name: str) -> bytes:
        return pack_serialized(self._lists.get(name, []))


def _record_end(data: bytes, position: int) -> int | None:
    """Where the record at ``position`` ends, if a whole one that checks out starts there."""
    if position + _RECORD_HEADER.size > len(data):
        return None
    length, crc = _RECORD_HEADER.unpack_from(data, position)
    end = position + _RECORD_HEADER.size + length
    if end > len(data) or zlib.crc32(data[position + _RECORD_HEADER.size:end]) != crc:
        return None
    return end


def _next_record(data: bytes, start: int) -> int:
    """The first position from ``start`` on where a good record starts, else the end."""
    for position in range(start, len(data)):
        if _record_end(data, position) is not None:
            return position
    return len(data)


def _decoded(record) -> tuple:
    """A change as the store applies it, from its logged form; JetError if it is malformed.

    ("map", name, blob of [(key bytes, value bytes)]) -> ("map", name, entries);
    ("list", name, blob of [item bytes]) -> ("list", name, items);
    ("publish", job id, snapshot id, [map or list changes]) -> with those decoded.
    """
    if not isinstance(record, (list, tuple)) or not record:
        raise JetError("a change is not a list")
    kind = record[0]
    try:
        if kind in ("map", "list"):
            _, name, blob = record
            if type(name) is not str or type(blob) is not bytes:
                raise JetError(f"a {kind} change needs a name and serialized data")
            values = unpack_serialized(blob)
            if kind == "map" and not all(type(e) is tuple and len(e) == 2 and type(e[0]) is bytes
                                         and type(e[1]) is bytes for e in values):
                raise JetError(f"map '{name}': an entry is not a pair of serialized key and value")
            if kind == "list" and not all(type(item) is bytes for item in values):
                raise JetError(f"list '{name}': an item is not serialized")
            return kind, name, values
        if kind == "publish":
            _, job_id, snapshot_id, writes = record
            if type(job_id) is not int or type(snapshot_id) is not int or not isinstance(writes, (list, tuple)):
                raise JetError("a publication needs a job id, a snapshot id and a list of writes")
            decoded = [_decoded(write) for write in writes]
            if any(write[0] == "publish" for write in decoded):
                raise JetError("a publication inside a publication")
            return kind, job_id, snapshot_id, decoded
    except (ValueError, ProtocolError) as e:  # wrong arity, undecodable blob
        raise JetError(f"a malformed {kind} change: {e}") from None
    raise JetError(f"a change of unknown kind {kind!r}")


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
