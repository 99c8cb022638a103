"""Named maps and lists held by the master (Jet's IMap and IList), as serialized bytes.

The master runs no user code, so it never unpickles a user's keys or values: a map
holds pickled keys and values, keyed by the pickled key's bytes (as Hazelcast's IMap
compares keys in serialized form: equal keys must serialize equally, which holds for
str, int, tuples of them and most plain data). Members send batches of them as
:func:`jetmq.protocol.pack_serialized` blobs.

Every change goes to ``structures.log`` on the store's I/O thread first and is applied
in memory when that returns, so the order changes are seen in is the order a restarted
master replays them in. The log also records which snapshot's exactly-once output
each job has published, so a restarted master can publish what a crash interrupted,
once. A snapshot's output is published by reference: the I/O thread reads the
members' staged files, logs them and hands the decoded changes back; the loop never
reads those bytes.

A read is answered once every change accepted before it is applied: a client reads
its own writes, and a job's list holds the output of every snapshot committed before
the read came, even one whose publishing was still on the I/O thread.
"""
from __future__ import annotations

import logging
from collections import deque
from pathlib import Path
from typing import Callable

from jetmq.errors import JetError
from jetmq.master.io import run_now
from jetmq.master.quarantine import Quarantine
from jetmq.master.structures_log import StructuresLog, decoded
from jetmq.protocol import pack_serialized

log = logging.getLogger(__name__)


class NamedStore:
    """The cluster's named maps and lists, in the master's memory and (with a log) on disk.

    ``io`` runs the log's work; by default at once, on the caller's thread.
    """

    def __init__(self, io=None):
        self._maps: dict[str, dict[bytes, bytes]] = {}
        self._lists: dict[str, list[bytes]] = {}
        self._published: dict[int, int] = {}  # job id -> last snapshot whose output is published
        self._log: StructuresLog | None = None
        self._submit = io.submit if io is not None else run_now
        self.problem: str | None = None  # why the log could not be written, as last heard
        self._accepted = 0  # changes handed to the I/O thread
        self._applied = 0  # of them, applied in memory (in the order accepted)
        self._reads: deque[tuple[int, Callable[[], None]]] = deque()  # (changes to wait for, answer)

    def open_log(self, path: Path, quarantine: Quarantine | None = None) -> None:
        """Replay the log at ``path`` (if any), then log every change to it. Records that
        cannot be read or applied are kept aside in ``quarantine``. Called before serving."""
        self._log = StructuresLog(Path(path))
        self._log.open(self._apply, quarantine or Quarantine(Path(path).parent / "quarantine"))

    @property
    def log(self) -> StructuresLog | None:
        """The log, for work on the I/O thread (a snapshot's commit checks it is durable)."""
        return self._log

    # ------------------------------------------------------------------ changes

    def map_put_all(self, name: str, entries_blob: bytes) -> None:
        self._record(("map", name, entries_blob))

    def list_add_all(self, name: str, items_blob: bytes) -> None:
        self._record(("list", name, items_blob))

    def _record(self, record: tuple) -> None:
        """Check a change (JetError at once if malformed), log it, then apply it."""
        change = decoded(record)
        self._accepted += 1
        self._submit(f"logging a {record[0]} change", lambda: self._append(record),
                     lambda problem, error: self._logged(change, problem, error))

    def publish(self, job_id: int, snapshot_id: int, read_writes: Callable[[], list],
                then: Callable[[BaseException | None], None] = lambda error: None) -> None:
        """Publish a snapshot's exactly-once output and remember that it is published, in
        one log record (so a crash publishes it wholly or not at all). ``read_writes()``
        runs on the I/O thread and returns the (kind, name, data) to publish; ``then``
        gets the error, if the output could not be read or was malformed."""
        def work():
            record = ("publish", job_id, snapshot_id, list(read_writes()))
            change = decoded(record)
            return change, self._append(record)

        def done(result, error):
            if error is None:
                change, problem = result
                self._logged(change, problem, None)
            else:
                self._settled()
            then(error)
        self._accepted += 1
        self._submit(f"publishing the output of snapshot {snapshot_id} of job {job_id}", work, done)

    def flush(self) -> None:
        """Log the changes that wait for the disk (called now and then while there are)."""
        if self._log is not None and self.problem is not None:
            self._submit("flushing structures.log", self._log.flush, lambda problem, error: self._heard(problem))

    def _append(self, record: tuple) -> str | None:
        return self._log.append(record) if self._log is not None else None

    def _logged(self, change: tuple, problem: str | None, error: BaseException | None) -> None:
        if error is not None:  # not a disk error (those wait in the log): a bug; the change still applies
            log.error("logging a change failed: %s", error)
        self._heard(problem)
        self._apply(change)
        self._settled()

    def _settled(self) -> None:
        """One more accepted change is applied (or failed): answer the reads waiting for it."""
        self._applied += 1
        while self._reads and self._reads[0][0] <= self._applied:
            read = self._reads.popleft()[1]
            try:
                read()
            except Exception:  # one failed answer must not hold back the reads behind it
                log.exception("answering a read of a map or list failed")

    def _heard(self, problem: str | None) -> None:
        self.problem = problem

    def published_snapshot(self, job_id: int) -> int:
        """The last snapshot whose exactly-once output this store has published (-1: none)."""
        return self._published.get(job_id, -1)

    def _apply(self, change) -> None:
        """Apply a decoded change, live or replayed from the log."""
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

    def close(self) -> None:
        if self._log is not None:
            self._log.close()

    # ------------------------------------------------------------------ reads

    def read_map(self, name: str, answer: Callable[[bytes], None]) -> None:
        """``answer`` the map's entries (a blob) once every change accepted so far is applied."""
        self._when_applied(lambda: answer(pack_serialized(list(self._maps.get(name, {}).items()))))

    def read_list(self, name: str, answer: Callable[[bytes], None]) -> None:
        """``answer`` the list's items (a blob) once every change accepted so far is applied."""
        self._when_applied(lambda: answer(pack_serialized(self._lists.get(name, []))))

    def _when_applied(self, read: Callable[[], None]) -> None:
        if self._applied >= self._accepted:
            read()
        else:
            self._reads.append((self._accepted, read))

    @staticmethod
    def check_write(kind: str, name: str, data: bytes) -> None:
        """A write of exactly-once output; JetError if it could never be applied."""
        if kind not in ("map", "list"):
            raise JetError(f"a staged write of kind {kind!r}: only 'map' and 'list' exist")
        decoded((kind, name, data))
