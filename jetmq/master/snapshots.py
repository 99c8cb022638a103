"""The snapshot coordinator: when to snapshot a job, and the two phases of each snapshot.

One snapshot at a time per job, ids from 0; the next starts ``snapshot_interval_ms``
after the previous one ended. In phase 1 every member of the execution saves its
state and writes it, with the exactly-once output the snapshot covers, into the
snapshot store itself, then reports the files' names, sizes and checksums. The master
then commits on its store I/O thread: it writes the manifest (the commit point) and
the job's record naming the snapshot; only then is the snapshot the job's restore
point, its output published, the previous snapshot deleted and phase 2 sent, so that
transactional sinks publish. A failed snapshot never fails the job: the previous one
stays the restore point. The master's loop never reads or writes a byte of state.
"""
from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from jetmq import protocol as p
from jetmq.errors import JetError
from jetmq.master.jobs import JobRecord, TerminationStage, now_ms
from jetmq.master.persistence import RecordWriter
from jetmq.master.repository import encode
from jetmq.master.store import NamedStore
from jetmq.names import path_in
from jetmq.storage import snapshots as store
from jetmq.storage.snapshots import SnapshotInfo

log = logging.getLogger(__name__)


class SnapshotWriteError(JetError):
    """A snapshot could not be committed (a write failed, or published output is not durable)."""


class AttemptStage(enum.Enum):
    SAVING = "phase 1: the members save their state into the store"
    COMMITTING = "the manifest and the job's record are being written"


@dataclass
class SnapshotAttempt:
    snapshot_id: int
    execution_id: int
    terminal: bool
    waiting: set[str] = field(default_factory=set)  # members that have not finished phase 1
    files: dict[str, p.SnapshotFiles] = field(default_factory=dict)  # member uuid -> what it wrote
    started: float = field(default_factory=time.monotonic)
    exports: list = field(default_factory=list)  # (name, done(error or None)) to serve on commit
    stage: AttemptStage = AttemptStage.SAVING


class SnapshotCoordinator:
    def __init__(self, root: Path, send: Callable[[str, object], None], store_io, bulk_io,
                 named_store: NamedStore, records: RecordWriter,
                 on_terminal_snapshot: Callable[[JobRecord, bool], None],
                 on_settled: Callable[[JobRecord], None]):
        """``store_io`` runs commits, in order with job records and the structures log;
        ``bulk_io`` copies and deletes snapshots. ``on_terminal_snapshot(job, success)``
        is called when a terminal snapshot ends, ``on_settled(job)`` when a job's
        snapshot attempt is over (an execution may start again)."""
        self.root = Path(root)
        self._send = send
        self._store_io = store_io
        self._bulk_io = bulk_io
        self._named_store = named_store
        self._records = records
        self._on_terminal = on_terminal_snapshot
        self._on_settled = on_settled

    def job_dir(self, job: JobRecord) -> Path:
        return store.job_dir(self.root, job.job_id)

    def named_dir(self, name: str) -> Path:
        """The directory of a named snapshot; InvalidNameError for a name that is a path."""
        return path_in(store.named_root(self.root), "snapshot", name)

    # ------------------------------------------------------------------ scheduling

    def execution_running(self, job: JobRecord) -> None:
        job.snapshot_due = time.monotonic() + job.config.snapshot_interval_ms / 1000

    def tick(self, jobs, now: float) -> None:
        for job in jobs:
            if job.execution is None or job.snapshot is not None:
                continue
            termination = job.termination
            if termination is not None and termination.stage is TerminationStage.AWAITING_SNAPSHOT:
                self.start(job, terminal=True, exports=job.pending_exports)
            elif job.pending_exports and job.status.name == "RUNNING":
                self.start(job, terminal=False, exports=job.pending_exports)
            elif job.uses_snapshots and job.status.name == "RUNNING" and now >= job.snapshot_due:
                self.start(job, terminal=False)

    def start(self, job: JobRecord, terminal: bool, exports: list | None = None) -> None:
        """Start a snapshot; ``exports`` are (name, done) pairs: copy it to those names."""
        execution = job.execution
        snapshot_id = job.next_snapshot_id
        job.next_snapshot_id += 1
        if terminal and job.termination is not None:
            job.termination.stage = TerminationStage.SNAPSHOTTING
        # a member whose part of the execution has completed has no state left to save
        taking_part = [uuid for uuid in execution.member_uuids if uuid not in execution.stopped]
        attempt = SnapshotAttempt(snapshot_id, execution.execution_id, terminal, set(taking_part),
                                  exports=list(exports or ()))
        job.snapshot = attempt
        job.pending_exports = []
        log.info("job %s: snapshot %d started%s", job.id_string, snapshot_id, " (terminal)" if terminal else "")
        for uuid in taking_part:
            self._send(uuid, p.StartSnapshot(execution.execution_id, snapshot_id, terminal))
        if not taking_part:
            self._commit(job, attempt)

    # ------------------------------------------------------------------ phase 1

    def _saving(self, job: JobRecord, execution_id: int, snapshot_id: int) -> SnapshotAttempt | None:
        attempt = job.snapshot
        if (attempt is None or attempt.stage is not AttemptStage.SAVING or attempt.execution_id != execution_id
                or attempt.snapshot_id != snapshot_id):
            return None
        return attempt

    def on_phase1_done(self, job: JobRecord, uuid: str, msg: p.SnapshotPhase1Done) -> None:
        attempt = self._saving(job, msg.execution_id, msg.snapshot_id)
        if attempt is None:
            return
        if msg.failure is not None:
            self._finish(job, attempt, success=False, why=f"member {uuid}: {msg.failure}")
            return
        if msg.files is not None:
            attempt.files[uuid] = msg.files
        attempt.waiting.discard(uuid)
        if not attempt.waiting:
            self._commit(job, attempt)

    def member_completed(self, job: JobRecord, uuid: str) -> None:
        """A member's part of the execution completed: it owes no snapshot any more."""
        attempt = job.snapshot
        if attempt is not None and attempt.stage is AttemptStage.SAVING and uuid in attempt.waiting:
            attempt.waiting.discard(uuid)
            if not attempt.waiting:
                self._commit(job, attempt)

    def member_left(self, job: JobRecord, uuid: str) -> None:
        attempt = job.snapshot
        if attempt is not None and attempt.stage is AttemptStage.SAVING and uuid in attempt.waiting:
            self._finish(job, attempt, success=False, why=f"member {uuid} left")

    # ------------------------------------------------------------------ the commit

    def _commit(self, job: JobRecord, attempt: SnapshotAttempt) -> None:
        """Commit on the store I/O thread: the manifest, then the job's record naming the
        snapshot (for a job with a guarantee); any failure there fails the snapshot."""
        attempt.stage = AttemptStage.COMMITTING
        snapshot_id, previous = attempt.snapshot_id, job.last_snapshot_id
        directory = store.snapshot_dir(self.root, job.job_id, snapshot_id)
        members = sorted(attempt.files.values(), key=lambda files: files.member_index)
        took_part = {files.member_index for files in members}
        # output of members whose part completed before this snapshot, still uncovered
        finals = [ref for index, ref in (job.execution.final_outputs.items() if job.execution else ())
                  if index not in took_part]
        record = encode(job, last_snapshot_id=snapshot_id) if job.uses_snapshots else None
        structures_log, repository, root = self._named_store.log, self._records.repository, self.root
        self._records.hold(job)  # no older record of the job may overwrite the one naming this snapshot
        job_id, job_name = job.job_id, job.name

        def work() -> SnapshotInfo:
            if structures_log is not None and not structures_log.durable:
                raise SnapshotWriteError(f"published output is not yet durable: {structures_log.problem}")
            directory.mkdir(parents=True, exist_ok=True)
            completed = [write for ref in finals for write in store.read_staged(root, ref)
                         if previous < write[0] <= snapshot_id]
            info = store.commit(directory, snapshot_id, job_id, job_name, now_ms(), members,
                                store.write_completed_staged(directory, completed))
            if record is not None:
                try:
                    repository.write(job_id, record)
                except OSError:
                    (directory / store.MANIFEST).unlink(missing_ok=True)  # not recorded: not committed
                    raise
            return info

        self._store_io.submit(f"committing snapshot {snapshot_id} of job {job.id_string}", work,
                              lambda info, error: self._committed(job, attempt, info, error))

    def _committed(self, job: JobRecord, attempt: SnapshotAttempt, info: SnapshotInfo | None,
                   error: BaseException | None) -> None:
        if error is None and job.uses_snapshots:
            previous, job.last_snapshot_id = job.last_snapshot_id, attempt.snapshot_id
        self._records.release(job)
        if error is not None:
            why = f"cannot write it: {error.strerror or error}" if isinstance(error, OSError) else str(error)
            self._finish(job, attempt, success=False, why=why)
            return
        snapshot_id = attempt.snapshot_id
        log.info("job %s: snapshot %d committed (%d entries, %d bytes, %.0f ms)", job.id_string, snapshot_id,
                 info.entry_count, info.size_bytes, (time.monotonic() - attempt.started) * 1000)
        if job.uses_snapshots:
            self.publish(job, snapshot_id, previous)
            if previous >= 0:
                self._delete(store.snapshot_dir(self.root, job.job_id, previous))
        for name, done in attempt.exports:
            self._export(info.path, name, done)
        attempt.exports = []
        if not job.uses_snapshots:  # taken only to be exported: a job without a guarantee restores nothing
            self._delete(info.path)
        self._finish(job, attempt, success=True, why="committed")
        if job.status.is_terminal:  # the job ended while its snapshot was being committed
            self._delete(self.job_dir(job))

    def publish(self, job: JobRecord, snapshot_id: int, after: int) -> None:
        """Publish the exactly-once output snapshot ``snapshot_id`` covers (epochs after
        ``after``), read from its files on the store I/O thread."""
        path, job_id = store.snapshot_dir(self.root, job.job_id, snapshot_id), job.job_id

        def read_writes() -> list:
            return [w[1:] for w in store.read_covered_output(path) if after < w[0] <= snapshot_id]

        def done(error):
            if error is not None:
                log.error("job %s: the output of snapshot %d cannot be published: %s", job.id_string, snapshot_id,
                          error)
        self._named_store.publish(job_id, snapshot_id, read_writes, done)

    def _finish(self, job: JobRecord, attempt: SnapshotAttempt, success: bool, why: str) -> None:
        if not success:
            log.warning("job %s: snapshot %d failed: %s", job.id_string, attempt.snapshot_id, why)
            self._delete(store.snapshot_dir(self.root, job.job_id, attempt.snapshot_id))
            for name, done in attempt.exports:
                done(f"cannot export snapshot '{name}': the snapshot failed: {why}")
        job.snapshot = None
        self.execution_running(job)
        execution = job.execution
        if execution is not None and execution.execution_id == attempt.execution_id:
            for uuid in execution.member_uuids:
                self._send(uuid, p.SnapshotPhase2(attempt.execution_id, attempt.snapshot_id, success))
            if attempt.terminal:
                self._on_terminal(job, success)
        self._on_settled(job)

    def abort(self, job: JobRecord, why: str) -> None:
        """The execution ended: drop the snapshot it was saving. One being committed goes
        on (its files are whole): the job waits for it before it starts again."""
        attempt = job.snapshot
        if attempt is None or attempt.stage is AttemptStage.COMMITTING:
            return
        job.snapshot = None
        log.info("job %s: snapshot %d abandoned: %s", job.id_string, attempt.snapshot_id, why)
        self._delete(store.snapshot_dir(self.root, job.job_id, attempt.snapshot_id))
        for name, done in attempt.exports:
            done(f"cannot export snapshot '{name}': the snapshot was abandoned: {why}")

    @staticmethod
    def committing(job: JobRecord) -> bool:
        return job.snapshot is not None and job.snapshot.stage is AttemptStage.COMMITTING

    # ------------------------------------------------------------------ named snapshots

    def _export(self, source: Path, name: str, done) -> None:
        """Copy a committed snapshot to the named one (bulk I/O); ``done(error text or None)``."""
        target = self.named_dir(name)

        def finished(_result, error):
            if error is None:
                log.info("exported snapshot '%s'", name)
                done(None)
            else:
                done(f"cannot export snapshot '{name}': {getattr(error, 'strerror', None) or error}")
        self._bulk_io.submit(f"exporting snapshot '{name}'", lambda: store.copy_as(source, target), finished)

    def export_last(self, job: JobRecord, name: str, done) -> None:
        """Export a job's last committed snapshot (a suspended job's)."""
        if job.last_snapshot_id < 0:
            done(f"job {job.id_string} has no snapshot to export (it was suspended without one)")
            return
        self._export(store.snapshot_dir(self.root, job.job_id, job.last_snapshot_id), name, done)

    def named(self, done: Callable[[list[SnapshotInfo]], None]) -> None:
        """The named snapshots, read on the bulk I/O thread (after the exports before)."""
        directory = store.named_root(self.root)

        def work() -> list[SnapshotInfo]:
            infos = []
            for path in sorted(directory.iterdir()) if directory.exists() else []:
                if path.name.startswith("."):
                    continue
                try:
                    infos.append(store.read_info(path))
                except store.SnapshotDamagedError:
                    log.warning("named snapshot %s has no readable manifest", path.name)
            return infos
        self._bulk_io.submit("listing the named snapshots", work, lambda infos, error: done(infos or []))

    def delete_named(self, name: str, done: Callable[[bool], None]) -> None:
        """Delete a named snapshot; ``done(False)`` if there was none of that name."""
        path = self.named_dir(name)

        def work() -> bool:
            if not (path / store.MANIFEST).exists():
                return False
            store.delete(path)
            return True
        self._bulk_io.submit(f"deleting snapshot '{name}'", work, lambda found, error: done(bool(found)))

    # ------------------------------------------------------------------ restore and removal

    def restore_source(self, job: JobRecord) -> tuple[int, str] | None:
        """(snapshot id, directory relative to the store) the job's next execution restores
        from: its own last committed snapshot, else its initial named snapshot; None for
        empty state. Members read it, and report a damaged one; nothing is read here."""
        if job.uses_snapshots and job.last_snapshot_id >= 0:
            path = store.snapshot_dir(self.root, job.job_id, job.last_snapshot_id)
            return job.last_snapshot_id, str(path.relative_to(self.root))
        name = job.config.initial_snapshot_name
        if name is not None:
            return -1, str(self.named_dir(name).relative_to(self.root))
        return None

    def delete_execution_output(self, job: JobRecord, execution_id: int) -> None:
        self._delete(store.execution_dir(self.root, job.job_id, execution_id))

    def delete_all(self, job: JobRecord) -> None:
        """The job ended: its snapshots go with it (after a commit under way, if any)."""
        self.abort(job, "the job ended")
        if not self.committing(job):
            self._delete(self.job_dir(job))

    def _delete(self, path: Path) -> None:
        """Delete on the bulk thread once the store thread has done the work handed to it
        before: a publish queued there may still have to read the output under ``path``."""
        self._store_io.submit(f"waiting to delete {path}", lambda: None,
                              lambda _result, _error: self._bulk_io.submit(f"deleting {path}",
                                                                           lambda: store.delete(path)))
