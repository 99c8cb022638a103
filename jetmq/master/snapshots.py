"""The snapshot coordinator: when to snapshot a job, and the two phases of each snapshot.

One snapshot at a time per job, ids from 0; the next starts ``snapshot_interval_ms``
after the previous one ended. Phase 1 ends when every member of the execution has
sent its state chunks and said so; the master then writes the manifest (the commit
point), records the snapshot as the job's last good one, deletes the older one, and
sends phase 2 so transactional sinks publish. A failed snapshot never fails the job.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from jetmq import protocol as p
from jetmq.ids import id_to_string
from jetmq.master import snapshot_store
from jetmq.master.jobs import JobRecord, now_ms
from jetmq.master.snapshot_store import SnapshotDamagedError, SnapshotWriteError, SnapshotWriter
from jetmq.names import path_in

log = logging.getLogger(__name__)


@dataclass
class SnapshotAttempt:
    snapshot_id: int
    execution_id: int
    terminal: bool
    writer: SnapshotWriter
    waiting: set[str] = field(default_factory=set)  # members that have not finished phase 1
    started: float = field(default_factory=time.monotonic)
    exports: list = field(default_factory=list)  # (name, done(error or None)) to serve on commit


class SnapshotCoordinator:
    def __init__(self, root: Path, send: Callable[[str, object], None], save_job: Callable[[JobRecord], bool],
                 on_terminal_snapshot: Callable[[JobRecord, bool], None],
                 on_committed: Callable[[JobRecord, int], None],
                 publication_problem: Callable[[], str | None] = lambda: None):
        """``save_job(job)`` saves the job's record, False if it could not;
        ``on_terminal_snapshot(job, success)`` is called when a terminal snapshot ends;
        ``on_committed(job, snapshot_id, writes)`` right after a snapshot commits, before
        phase 2, with the exactly-once sink output it covers, [(kind, name, data)];
        ``publication_problem()`` says why that output could not be published durably
        now (the named store's log cannot be written), or None."""
        self.root = Path(root)
        self._send = send
        self._save_job = save_job
        self._on_terminal = on_terminal_snapshot
        self._on_committed = on_committed
        self._publication_problem = publication_problem

    def job_dir(self, job: JobRecord) -> Path:
        return self.root / "jobs" / id_to_string(job.job_id)

    def named_dir(self, name: str) -> Path:
        """The directory of a named snapshot; InvalidNameError for a name that is a path."""
        return path_in(self.root / "named", "snapshot", name)

    # ------------------------------------------------------------------ scheduling

    def execution_running(self, job: JobRecord) -> None:
        job.snapshot_due = time.monotonic() + job.config.snapshot_interval_ms / 1000

    def tick(self, jobs, now: float) -> None:
        for job in jobs:
            if job.execution is None or job.snapshot is not None:
                continue
            if job.terminal_snapshot_wanted:
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
        job.terminal_snapshot_wanted = False
        writer = SnapshotWriter(self.job_dir(job) / str(snapshot_id))
        # a member whose part of the execution has completed has no state left to save
        taking_part = [uuid for uuid in execution.member_uuids if uuid not in execution.stopped]
        job.snapshot = SnapshotAttempt(snapshot_id, execution.execution_id, terminal, writer,
                                       set(taking_part), exports=list(exports or ()))
        job.pending_exports = []
        log.info("job %s: snapshot %d started%s", job.id_string, snapshot_id, " (terminal)" if terminal else "")
        for uuid in taking_part:
            self._send(uuid, p.StartSnapshot(execution.execution_id, snapshot_id, terminal))
        if not taking_part:
            self._commit(job, job.snapshot)

    # ------------------------------------------------------------------ phase 1

    def _attempt(self, job: JobRecord, execution_id: int, snapshot_id: int) -> SnapshotAttempt | None:
        attempt = job.snapshot
        if attempt is None or attempt.execution_id != execution_id or attempt.snapshot_id != snapshot_id:
            return None
        return attempt

    def on_chunk(self, job: JobRecord, msg: p.SnapshotChunk) -> None:
        attempt = self._attempt(job, msg.execution_id, msg.snapshot_id)
        if attempt is not None:
            attempt.writer.add_chunk(msg.vertex, msg.entries, msg.entry_count)

    def on_phase1_done(self, job: JobRecord, uuid: str, msg: p.SnapshotPhase1Done) -> None:
        attempt = self._attempt(job, msg.execution_id, msg.snapshot_id)
        if attempt is None:
            return
        if msg.failure is not None:
            self._finish(job, attempt, success=False, why=f"member {uuid}: {msg.failure}")
            return
        attempt.waiting.discard(uuid)
        if not attempt.waiting:
            self._commit(job, attempt)

    def _commit(self, job: JobRecord, attempt: SnapshotAttempt) -> None:
        """Commit a snapshot whose phase 1 ended everywhere, or fail it, never half-way.

        The manifest is the commit point, recorded in the job's record; only then is
        the output it covers published and the previous snapshot deleted. A write that
        fails anywhere before that fails the snapshot: the previous one stays the
        restore point, and the next interval tries again.
        """
        # the sink output this snapshot covers is saved in it, so a master that dies
        # between the commit and the publication publishes it when it starts again
        covered = sorted((w for w in job.staged if 0 <= w[0] <= attempt.snapshot_id), key=lambda w: w[0])
        writes = [w[1:] for w in covered]
        problem = self._publication_problem()
        if problem is not None:  # the output of an earlier snapshot is not durable yet
            self._finish(job, attempt, success=False, why=f"its output could not be published: {problem}")
            return
        attempt.writer.add_staged(writes)
        try:
            info = attempt.writer.commit(attempt.snapshot_id, job.job_id, job.name, now_ms())
        except SnapshotWriteError as e:
            self._finish(job, attempt, success=False, why=str(e))
            return
        if job.uses_snapshots and not self._record_restore_point(job, attempt.snapshot_id):
            self._finish(job, attempt, success=False, why="the job's record could not be saved")
            return
        job.staged = [w for w in job.staged if w not in covered]
        log.info("job %s: snapshot %d committed (%d entries, %d bytes, %.0f ms)", job.id_string,
                 attempt.snapshot_id, info.entry_count, info.size_bytes,
                 (time.monotonic() - attempt.started) * 1000)
        self._on_committed(job, attempt.snapshot_id, writes)
        for name, done in attempt.exports:
            done(self._export(info.path, name))
        attempt.exports = []
        if not job.uses_snapshots:  # taken only to be exported: a job without a guarantee restores nothing
            snapshot_store.delete(info.path)
        self._finish(job, attempt, success=True, why="committed")

    def _record_restore_point(self, job: JobRecord, snapshot_id: int) -> bool:
        """Make a written snapshot the job's restore point in its record, then delete the
        one before; False (nothing changed) if the record could not be saved."""
        previous = job.last_snapshot_id
        job.last_snapshot_id = snapshot_id
        if not self._save_job(job):
            job.last_snapshot_id = previous  # not recorded: not committed (the finish deletes the manifest)
            return False
        if previous >= 0:
            snapshot_store.delete(self.job_dir(job) / str(previous))
        return True

    def _export(self, source: Path, name: str) -> str | None:
        """Copy a committed snapshot to the named one; an error text, or None."""
        try:
            snapshot_store.copy_as(source, self.named_dir(name))
        except (OSError, SnapshotDamagedError) as e:
            return f"cannot export snapshot '{name}': {e}"
        log.info("exported snapshot '%s'", name)
        return None

    def export_last(self, job: JobRecord, name: str) -> str | None:
        """Export a job's last committed snapshot (a suspended job's)."""
        if job.last_snapshot_id < 0:
            return f"job {job.id_string} has no snapshot to export (it was suspended without one)"
        return self._export(self.job_dir(job) / str(job.last_snapshot_id), name)

    def named(self) -> list[snapshot_store.SnapshotInfo]:
        directory = self.root / "named"
        infos = []
        for path in sorted(directory.iterdir()) if directory.exists() else []:
            if path.name.startswith("."):
                continue
            try:
                infos.append(snapshot_store.read_info(path))
            except SnapshotDamagedError:
                log.warning("named snapshot %s has no readable manifest", path.name)
        return infos

    def delete_named(self, name: str) -> bool:
        path = self.named_dir(name)
        if not (path / snapshot_store.MANIFEST).exists():
            return False
        snapshot_store.delete(path)
        return True

    def _finish(self, job: JobRecord, attempt: SnapshotAttempt, success: bool, why: str) -> None:
        if not success:
            log.warning("job %s: snapshot %d failed: %s", job.id_string, attempt.snapshot_id, why)
            attempt.writer.abort()
            for name, done in attempt.exports:
                done(f"cannot export snapshot '{name}': the snapshot failed: {why}")
        job.snapshot = None
        self.execution_running(job)
        if job.execution is not None:
            for uuid in job.execution.member_uuids:
                self._send(uuid, p.SnapshotPhase2(attempt.execution_id, attempt.snapshot_id, success))
        if attempt.terminal:
            self._on_terminal(job, success)

    def abort(self, job: JobRecord, why: str) -> None:
        """The execution ended: drop the snapshot in progress, if any."""
        attempt, job.snapshot = job.snapshot, None
        if attempt is not None:
            log.info("job %s: snapshot %d abandoned: %s", job.id_string, attempt.snapshot_id, why)
            attempt.writer.abort()
            for name, done in attempt.exports:
                done(f"cannot export snapshot '{name}': the snapshot was abandoned: {why}")

    def member_completed(self, job: JobRecord, uuid: str) -> None:
        """A member's part of the execution completed: it owes no snapshot any more."""
        attempt = job.snapshot
        if attempt is not None and uuid in attempt.waiting:
            attempt.waiting.discard(uuid)
            if not attempt.waiting:
                self._commit(job, attempt)

    def member_left(self, job: JobRecord, uuid: str) -> None:
        if job.snapshot is not None and uuid in job.snapshot.waiting:
            self._finish(job, job.snapshot, success=False, why=f"member {uuid} left")

    # ------------------------------------------------------------------ restore

    def entries_to_restore(self, job: JobRecord) -> tuple[int, dict] | None:
        """(snapshot id, entries) the job's next execution starts from, or None for empty state.

        The job's own last good snapshot first, else its initial named snapshot.
        Raises SnapshotDamagedError naming the snapshot when none can be read.
        """
        if job.last_snapshot_id >= 0:
            path = self.job_dir(job) / str(job.last_snapshot_id)
            try:
                return job.last_snapshot_id, snapshot_store.load(path)
            except SnapshotDamagedError as e:
                log.error("job %s: %s", job.id_string, e)
                fallback = self._older_good_snapshot(job)
                if fallback is not None:
                    return fallback
                if job.config.initial_snapshot_name is None:
                    raise SnapshotDamagedError(f"snapshot {job.last_snapshot_id} of job {job.id_string} "
                                               f"is damaged and no other snapshot exists: {e}") from None
        name = job.config.initial_snapshot_name
        if name is not None:
            try:
                return -1, snapshot_store.load(self.named_dir(name))
            except SnapshotDamagedError:
                raise SnapshotDamagedError(f'snapshot "{name}" doesn\'t exist or is damaged') from None
        return None

    def _older_good_snapshot(self, job: JobRecord):
        directory = self.job_dir(job)
        ids = sorted((int(d.name) for d in directory.iterdir() if d.name.isdigit()), reverse=True) \
            if directory.exists() else []
        for snapshot_id in ids:
            if snapshot_id == job.last_snapshot_id:
                continue
            try:
                entries = snapshot_store.load(directory / str(snapshot_id))
            except SnapshotDamagedError:
                continue
            log.warning("job %s: restoring from the older snapshot %d", job.id_string, snapshot_id)
            return snapshot_id, entries
        return None

    def staged_writes(self, job: JobRecord) -> list:
        """The sink output saved in the job's last committed snapshot."""
        try:
            return snapshot_store.load_staged(self.job_dir(job) / str(job.last_snapshot_id))
        except SnapshotDamagedError as e:
            log.error("job %s: cannot publish the output of snapshot %d: %s", job.id_string,
                      job.last_snapshot_id, e)
            return []

    def delete_all(self, job: JobRecord) -> None:
        self.abort(job, "the job ended")
        snapshot_store.delete(self.job_dir(job))
