"""``<data-dir>/structures.log``: the append-only log behind the named maps and lists.

Every change to a named map or list, and every publication of a snapshot's
exactly-once output, is a record: a length, a CRC-32 and the change, packed so that
loading it runs no code. Appends run on the master's store I/O thread (each fsynced);
a master started on the same data dir replays the log before it serves.

A change the log cannot take (a full disk, an I/O error) waits, in order, and is
appended on a later ``flush()`` once the disk takes writes again; until then
``durable`` is False, and snapshots do not commit (no published output may depend on
a record that is not on disk). A failed append is cut off, so no torn record stands
before later ones.
"""
from __future__ import annotations

import logging
import os
import struct
import zlib
from collections import deque
from pathlib import Path
from typing import Callable

from jetmq.errors import JetError
from jetmq.master.quarantine import Quarantine
from jetmq.protocol import ProtocolError, pack_serialized, unpack_serialized
from jetmq.storage.files import atomic_write

log = logging.getLogger(__name__)

_RECORD_HEADER = struct.Struct("!II")  # length, crc32 of the record


class StructuresLog:
    """The log file; ``append`` and ``flush`` are called from one thread only."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None
        self._pending: deque[tuple] = deque()  # records not yet on disk, in order
        self.problem: str | None = None  # why the log cannot be written now

    def open(self, apply: Callable[[tuple], None], quarantine: Quarantine) -> None:
        """Replay the log into ``apply`` (decoded changes), then open it for appends."""
        self._replay(apply, quarantine)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    @property
    def durable(self) -> bool:
        return not self._pending

    def append(self, record: tuple) -> str | None:
        """Log a record after those that wait; the problem if it has to wait too, else None."""
        self._pending.append(record)
        return self.flush()

    def flush(self) -> str | None:
        """Log the records that wait, in order; the problem at the first the disk refuses."""
        if self._fd is None:
            self._pending.clear()
            return None
        while self._pending:
            try:
                self._write(self._pending[0])
            except OSError as e:
                if self.problem is None:
                    log.error("cannot write %s (%s): changes to maps and lists wait in memory until it can be "
                              "written", self.path, e.strerror or e)
                self.problem = f"cannot write {self.path}: {e.strerror or e}"
                return self.problem
            self._pending.popleft()
        if self.problem is not None:
            log.warning("%s can be written again: every change is logged", self.path)
            self.problem = None
        return None

    def _write(self, record: tuple) -> None:
        """Write one record whole and fsync it; a failed write leaves no torn record behind."""
        data = pack_serialized(list(record))  # str, int, bytes and lists: loaded with no code run
        frame = _RECORD_HEADER.pack(len(data), zlib.crc32(data)) + data
        fd = self._fd
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

    def _replay(self, apply: Callable[[tuple], None], quarantine: Quarantine) -> None:
        """Apply every good record of the log. Bytes that fail their checksum are skipped
        up to the next good record (one damaged record never hides the ones after it);
        a record that passes its checksum but cannot be applied is skipped whole. Either
        is kept in the quarantine, and the log is then rewritten with the good records
        only. A torn last record (a crash mid-write) is cut off, and kept aside too."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        good: list[bytes] = []  # the good records' frames, when the log must be rewritten
        bad = 0
        position = 0
        while position < len(data):
            end = _record_end(data, position)
            if end is None:  # damaged bytes: skip to the next record that checks out
                resume = _next_record(data, position + 1)
                reason = ("a torn last record" if resume == len(data)
                          else f"{resume - position} bytes that fail their checksum")
                quarantine.keep(self.path.name, data[position:resume], f"{reason} at offset {position} "
                                f"of {self.path}")
                bad += 1
                position = resume
                continue
            body = data[position + _RECORD_HEADER.size:end]
            try:
                apply(decoded(unpack_serialized(body)))
            except Exception as e:
                quarantine.keep(self.path.name, data[position:end], f"a record at offset {position} of "
                                f"{self.path} that cannot be applied: {type(e).__name__}: {e}")
                bad += 1
            else:
                good.append(data[position:end])
            position = end
        if bad:
            atomic_write(self.path, b"".join(good))
            log.warning("%s: %d damaged or unusable part(s) kept in the quarantine, %d good records kept",
                        self.path, bad, len(good))
        log.info("replayed %d records of %s", len(good), self.path)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


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


def decoded(record) -> tuple:
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
            writes_decoded = [decoded(write) for write in writes]
            if any(write[0] == "publish" for write in writes_decoded):
                raise JetError("a publication inside a publication")
            return kind, job_id, snapshot_id, writes_decoded
    except (ValueError, ProtocolError) as e:  # wrong arity, undecodable blob
        raise JetError(f"a malformed {kind} change: {e}") from None
    raise JetError(f"a change of unknown kind {kind!r}")
