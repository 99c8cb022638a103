"""The job coordinator: Jet's job state machine, driving executions on the members.

An execution runs on the members present when it starts: InitExecution to each,
StartExecution once all are initialised; the job COMPLETES when every member's part
completed and FAILS when one fails (the others are told to terminate). Cancel,
suspend and restart terminate the execution: the job shows COMPLETING until every
member has stopped, then becomes FAILED (cancelled), SUSPENDED, or starts again.
Every status change is saved in the data dir, so a restarted master finds its jobs.
"""
from __future__ import annotations

import logging
from pathlib import Path

from jetmq import protocol as p
from jetmq.config import JobConfig
from jetmq.core.partition import owner_table
from jetmq.errors import IllegalJobStateError, JetError, JobAlreadyExistsError, JobNotFoundError
from jetmq.ids import FlakeIdGenerator, id_to_string
from jetmq.job_status import CANCELLATION_FAILURE, JobStatus
from jetmq.master.jobs import ExecutionRecord, JobRecord, JobRepository, TerminationMode, now_ms
from jetmq.master.membership import Membership
from jetmq.master.snapshot_store import SnapshotDamagedError, split_for_members
from jetmq.master.snapshots import SnapshotCoordinator
from jetmq.master.store import NamedStore, ObservableStore

log = logging.getLogger(__name__)

S = JobStatus
#: The epoch of a completed execution's last output: after every snapshot.
FINAL_EPOCH = 1 << 62


class JobCoordinator:
    def __init__(self, membership: Membership, send, ids: FlakeIdGenerator, store: NamedStore,
                 repository: JobRepository, snapshot_root: Path):
        """``send(member_uuid, msg)`` reaches a member."""
        self._membership = membership
        self._send_to_member = send
        self.snapshots = SnapshotCoordinator(snapshot_root, send, self._save, self._on_terminal_snapshot,
                                             self._publish_staged, self._publication_problem)
        self._ids = ids
        self.store = store
        self._unsaved: set[int] = set()  # jobs whose record could not be saved: saved again on tick
        self.observables = ObservableStore()
        self.repository = repository
        self.jobs: dict[int, JobRecord] = {}
        self._by_execution: dict[int, JobRecord] = {}
        self._cluster_ready = False  # no execution starts before the first members have all joined
        self.leaving: set[str] = set()  # members asked to leave: no new execution uses them

    def member_handlers(self) -> dict:
        """Handlers of messages that only members send (the sender's uuid comes along)."""
        return {
            p.ExecutionInitialized: self._on_initialized,
            p.ExecutionFinished: self._on_finished,
            p.MapPutAll: lambda uuid, msg: self.store.map_put_all(msg.name, msg.entries),
            p.ListAddAll: lambda uuid, msg: self.store.list_add_all(msg.name, msg.items),
            p.ObservableAttach: lambda uuid, msg: self.observables.attach(msg.name, msg.job_id),
            p.ObservablePublish: lambda uuid, msg: self.observables.publish(msg.name, msg.items),
            p.SnapshotChunk: lambda uuid, msg: self._with_job(uuid, msg, self.snapshots.on_chunk),
            p.StagedWrite: lambda uuid, msg: self._with_job(uuid, msg, self._on_staged_write),
            p.SnapshotPhase1Done: lambda uuid, msg: self._with_job(
                uuid, msg, lambda job, m: self.snapshots.on_phase1_done(job, uuid, m)),
        }

    def _on_staged_write(self, job: JobRecord, msg: p.StagedWrite) -> None:
        """Exactly-once output, kept until its snapshot commits: checked now, since a
        write that could not be applied then would be published nowhere (JetError)."""
        try:
            self.store.check_write(msg.kind, msg.name, msg.data)
        except JetError as e:
            self._fail(job, f"a member sent output that can never be published: {e}")
            return
        job.staged.append((msg.epoch, msg.kind, msg.name, msg.data))

    def _with_job(self, uuid: str, msg, handler) -> None:
        job = self._current(uuid, msg.execution_id)
        if job is not None:
            handler(job, msg)

    def tick(self, now: float) -> None:
        """Called after every poll of the master's loop: save what could not be saved,
        start snapshots that are due."""
        if self._unsaved:
            for job_id in list(self._unsaved):
                job = self.jobs.get(job_id)
                if job is None or self._save(job):
                    self._unsaved.discard(job_id)
        self.store.flush()
        self.snapshots.tick(list(self.jobs.values()), now)

    def _publication_problem(self) -> str | None:
        if self.store.durable:
            return None
        return self.store.problem or "earlier changes still wait to be logged"

    # ------------------------------------------------------------------ recovery

    def load(self) -> None:
        """Bring back the jobs of an earlier master on this data dir.

        Finished and suspended jobs stay as they were; jobs that were running start
        again once members are here, from their last snapshot (or from scratch without one).
        """
        records = self.repository.load_all()
        for job in self.repository.expired(records, now_ms()):
            try:
                self.repository.delete(job.job_id)
            except OSError as e:
                log.error("job %s: cannot delete its expired record: %s", job.id_string, e.strerror or e)
            records.remove(job)
        for job in records:
            self.jobs[job.job_id] = job
            if job.last_snapshot_id > self.store.published_snapshot(job.job_id):
                # the old master committed the snapshot but died before publishing its output
                writes = self.snapshots.staged_writes(job)
                log.info("job %s: publishing the output of snapshot %d, interrupted by a crash",
                         job.id_string, job.last_snapshot_id)
                self.store.publish(job.job_id, job.last_snapshot_id, writes)
            if job.status in (S.STARTING, S.RUNNING, S.COMPLETING):
                job.status = S.NOT_RUNNING  # not a transition: the executions died with the old master
                self._save(job)
        log.info("loaded %d jobs from %s", len(records), self.repository.root)

    def cluster_ready(self) -> None:
        """The master's forked members have all joined: start the jobs that wait."""
        self._cluster_ready = True
        self.start_waiting_jobs()

    def start_waiting_jobs(self) -> None:
        for job in list(self.jobs.values()):
            if job.status is S.NOT_RUNNING and job.execution is None:
                self._start_execution(job)

    def _save(self, job: JobRecord) -> bool:
        """Save the job's record; on a failed write, log it (once until it works again),
        keep the job in memory as it is and try again on the next tick. False then."""
        try:
            self.repository.save(job)
        except OSError as e:
            if job.job_id not in self._unsaved:
                log.error("job %s: cannot save its record (%s); it is kept in memory and saved again as soon "
                          "as the disk allows", job.id_string, e.strerror or e)
            self._unsaved.add(job.job_id)
            return False
        if job.job_id in self._unsaved:
            log.warning("job %s: its record is saved again", job.id_string)
            self._unsaved.discard(job.job_id)
        return True

    def _set_status(self, job: JobRecord, status: JobStatus, why: str) -> None:
        job.transition(status, why)
        self._save(job)
        if status is S.RUNNING:
            self.snapshots.execution_running(job)
        if status.is_terminal:
            self.snapshots.delete_all(job)  # as Jet: a finished job's snapshots go with it
            self.observables.job_ended(job.job_id, job.failure_text if status is S.FAILED else None)
            self._prune()

    def _prune(self) -> None:
        for job in self.repository.expired(list(self.jobs.values()), now_ms()):
            try:
                self.repository.delete(job.job_id)
            except OSError as e:
                log.error("job %s: cannot delete its expired record: %s", job.id_string, e.strerror or e)
                continue  # listed until it can be deleted
            del self.jobs[job.job_id]

    # ------------------------------------------------------------------ submission

    def submit(self, config: JobConfig, dag: bytes, if_absent: bool) -> JobRecord:
        """A new job, started at once; with ``if_absent``, the active job of that name if any."""
        if config.name is not None:
            active = self.active_named(config.name)
            if active is not None:
                if if_absent:
                    return active
                raise JobAlreadyExistsError(
                    f"Another active job with equal name ({config.name}) exists: {active.id_string}")
        job = JobRecord(self._ids.new_id(), config, dag, now_ms())
        if config.split_brain_protection:
            job.quorum = len(self.available_members()) // 2 + 1
        try:
            self.repository.create(job)
        except OSError as e:
            raise JetError(f"cannot record the job in the data directory: {e.strerror or e}") from None
        self.jobs[job.job_id] = job
        log.info("job %s (%s) submitted", job.id_string, job.name)
        self._start_execution(job)
        return job

    def active_named(self, name: str) -> JobRecord | None:
        return next((j for j in self.jobs.values() if j.name == name and j.status.is_active), None)

    def job(self, job_id: int) -> JobRecord:
        job = self.jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(f"No job with name or id '{id_to_string(job_id)}' was found")
        return job

    def export(self, job: JobRecord, name: str, cancel: bool, done) -> None:
        """Export the job's state as the named snapshot (then cancel it, if asked);
        ``done(error or None)`` is called once it is written, or failed."""
        if job.status is S.SUSPENDED:
            self._set_status(job, S.SUSPENDED_EXPORTING_SNAPSHOT, f"exporting snapshot '{name}'")
            error = self.snapshots.export_last(job, name)
            self._set_status(job, S.SUSPENDED, f"snapshot '{name}' exported")
            if cancel and error is None:
                self.cancel(job)
            done(error)
            return
        if job.status is not S.RUNNING:
            raise IllegalJobStateError(
                f"Cannot export snapshot, job is neither RUNNING nor SUSPENDED, but {job.status.name}")
        if cancel:
            if job.terminating is not None:
                raise IllegalJobStateError(f"Cannot {TerminationMode.CANCEL_GRACEFUL.name}: Job is already "
                                           f"terminating in mode: {job.terminating.name}")
            job.terminating = TerminationMode.CANCEL_GRACEFUL
            job.terminal_snapshot_wanted = True
            self._set_status(job, S.COMPLETING, f"exporting snapshot '{name}', then cancelling")
        job.pending_exports.append((name, done))
        if job.snapshot is None:
            self.snapshots.start(job, terminal=cancel, exports=job.pending_exports)

    # ------------------------------------------------------------------ lifecycle

    def cancel(self, job: JobRecord) -> None:
        """FAILED with CancellationException: at once unless an execution must stop first."""
        if job.status.is_terminal:
            return  # Jet ignores the cancellation of a finished job
        if job.execution is None:
            job.failure_text = CANCELLATION_FAILURE
            self._set_status(job, S.FAILED, "cancelled")
            return
        if job.terminating is not None and job.terminating.action == "cancel":
            return
        job.terminating = TerminationMode.CANCEL_FORCEFUL  # overrides a pending suspend or restart
        job.terminal_snapshot_wanted = False
        self._terminate(job, "cancelled")

    def suspend(self, job: JobRecord) -> None:
        self.request_termination(job, TerminationMode.SUSPEND_GRACEFUL)

    def restart(self, job: JobRecord) -> None:
        self.request_termination(job, TerminationMode.RESTART_GRACEFUL)

    def request_termination(self, job: JobRecord, mode: TerminationMode) -> None:
        """Suspend or restart a running job.

        With a processing guarantee, a graceful mode first takes a terminal snapshot
        (COMPLETING meanwhile) and the next execution starts from it; with NONE the
        execution stops at once and the state starts empty (docs/jet-compatibility.md §3).
        """
        if job.terminating is not None:
            raise IllegalJobStateError(f"Cannot {mode.name}: Job is already terminating in mode: "
                                       f"{job.terminating.name}")
        if job.status is not S.RUNNING:
            raise IllegalJobStateError(f"Cannot {mode.name}, job status is {job.status.name}, should be RUNNING")
        job.terminating = mode
        if job.uses_snapshots and mode.name.endswith("GRACEFUL"):
            self._set_status(job, S.COMPLETING, f"{mode.name}: taking a terminal snapshot")
            job.terminal_snapshot_wanted = True
            if job.snapshot is None:
                self.snapshots.start(job, terminal=True)
            return
        self._terminate(job, mode.name)

    def _on_terminal_snapshot(self, job: JobRecord, success: bool) -> None:
        """The terminal snapshot ended: stop the execution (a failed one: from the previous snapshot)."""
        if job.execution is not None and job.terminating is not None:
            self._terminate(job, f"{job.terminating.name}: terminal snapshot "
                                 f"{'taken' if success else 'failed, the previous one will be used'}")

    def resume(self, job: JobRecord) -> None:
        """SUSPENDED -> NOT_RUNNING -> STARTING; a no-op for a job that is not suspended."""
        if job.status is not S.SUSPENDED:
            return
        self._set_status(job, S.NOT_RUNNING, "resumed")
        self._start_execution(job)

    def _terminate(self, job: JobRecord, reason: str) -> None:
        """Tell every member of the execution to stop; COMPLETING until all have."""
        execution = job.execution
        if job.status is not S.COMPLETING:
            self._set_status(job, S.COMPLETING, f"terminating: {reason}")
        for uuid in execution.member_uuids:
            if uuid in self._membership and uuid not in execution.stopped:
                self._send_to_member(uuid, p.TerminateExecution(execution.execution_id, reason))
            else:
                execution.stopped.add(uuid)
        self._maybe_terminated(job)

    def _maybe_terminated(self, job: JobRecord) -> None:
        """Once every member has stopped, apply the pending termination."""
        execution = job.execution
        if not execution.all_stopped:
            return
        if execution.succeeded >= set(execution.member_uuids):
            job.terminating = None  # the job ended by itself while being terminated
            self._complete(job)
            return
        self._end_execution(job)
        mode, job.terminating = job.terminating, None
        if mode.action == "cancel":
            job.failure_text = CANCELLATION_FAILURE
            self._set_status(job, S.FAILED, "cancelled")
        elif mode.action == "suspend":
            self._set_status(job, S.SUSPENDED, mode.name)
        else:
            self._start_execution(job)

    # ------------------------------------------------------------------ executions

    def available_members(self) -> list:
        """Members a new execution may use: all but those leaving."""
        return [r for r in self._membership.records() if r.info.uuid not in self.leaving]

    def _start_execution(self, job: JobRecord) -> None:
        records = self.available_members()
        quorum_missing = job.config.split_brain_protection and len(records) < job.quorum
        if not records or not self._cluster_ready or quorum_missing:
            if job.status is not S.NOT_RUNNING:
                self._set_status(job, S.NOT_RUNNING, "waiting for members")
            log.info("job %s waits for members (%d present%s)", job.id_string, len(records),
                     f", quorum {job.quorum}" if job.config.split_brain_protection else "")
            return
        try:
            restore = self.snapshots.entries_to_restore(job)
        except SnapshotDamagedError as e:
            job.failure_text = str(e)
            self._set_status(job, S.FAILED, str(e))
            return
        execution = ExecutionRecord(self._ids.new_id(), tuple(r.info.uuid for r in records))
        job.execution = execution
        job.executions_started += 1
        self._by_execution[execution.execution_id] = job
        self._set_status(job, S.STARTING, f"execution {id_to_string(execution.execution_id)} on "
                                          f"{len(records)} members")
        members = tuple(r.info for r in records)
        owners = tuple(owner_table([m.uuid for m in members]))
        config = job.config.to_dict()
        snapshot_id, per_member = -1, [None] * len(members)
        if restore is not None:
            snapshot_id, entries = restore
            per_member = split_for_members(entries, owners, len(members))
            log.info("job %s restores from snapshot %s", job.id_string,
                     snapshot_id if snapshot_id >= 0 else f'"{job.config.initial_snapshot_name}"')
        for index, member in enumerate(members):
            self._send_to_member(member.uuid, p.InitExecution(
                job.job_id, execution.execution_id, index, members, owners, config, job.dag, snapshot_id,
                per_member[index]))

    def _current(self, uuid: str, execution_id: int) -> JobRecord | None:
        job = self._by_execution.get(execution_id)
        if job is None or job.execution is None or job.execution.execution_id != execution_id:
            return None  # an old execution's late message
        return job if uuid in job.execution.member_uuids else None

    def _on_initialized(self, uuid: str, msg: p.ExecutionInitialized) -> None:
        job = self._current(uuid, msg.execution_id)
        if job is None or job.status is not S.STARTING:
            return
        if msg.failure is not None:
            self._fail(job, msg.failure)
            return
        execution = job.execution
        execution.initialized.add(uuid)
        if execution.initialized >= set(execution.member_uuids):
            for member_uuid in execution.member_uuids:
                self._send_to_member(member_uuid, p.StartExecution(execution.execution_id))
            self._set_status(job, S.RUNNING, "every member initialised the execution")

    def _on_finished(self, uuid: str, msg: p.ExecutionFinished) -> None:
        job = self._current(uuid, msg.execution_id)
        if job is None or job.status.is_terminal:
            return
        execution = job.execution
        if msg.failure is not None and not msg.terminated and job.status is not S.COMPLETING:
            self._fail(job, msg.failure)
            return
        execution.stopped.add(uuid)
        if msg.failure is None and not msg.terminated:
            execution.succeeded.add(uuid)
            self.snapshots.member_completed(job, uuid)
        if job.status is S.COMPLETING:
            self._maybe_terminated(job)
        elif execution.succeeded >= set(execution.member_uuids):
            self._complete(job)

    def _complete(self, job: JobRecord) -> None:
        # the whole execution succeeded: all its output is final
        writes = [w[1:] for w in sorted(job.staged, key=lambda w: w[0] if w[0] >= 0 else FINAL_EPOCH)]
        self.store.publish(job.job_id, FINAL_EPOCH, writes)
        self._end_execution(job)
        self._set_status(job, S.COMPLETED, "every member completed")

    def terminate(self, job: JobRecord, mode: TerminationMode, reason: str) -> None:
        """Stop the job's execution at once; when every member has stopped, apply ``mode``."""
        job.terminating = mode
        job.terminal_snapshot_wanted = False
        self._terminate(job, reason)

    def fail(self, job: JobRecord, failure: str) -> None:
        self._fail(job, failure)

    def member_left_execution(self, job: JobRecord, uuid: str) -> bool:
        """A member of the job's execution left; True if the job was terminating anyway
        (the member then counts as stopped) and needs nothing more."""
        self.snapshots.member_left(job, uuid)
        if job.execution is None:
            return True
        if job.status is S.COMPLETING:
            job.execution.stopped.add(uuid)
            if job.terminating is not None and job.execution is not None:
                # no snapshot can complete without the member: stop now, and the next
                # execution starts from the last good snapshot
                job.terminal_snapshot_wanted = False
                self._terminate(job, f"member {uuid} left while the job was terminating")
            else:
                self._maybe_terminated(job)
            return True
        return False

    def _fail(self, job: JobRecord, failure: str) -> None:
        execution = job.execution
        for uuid in execution.member_uuids:
            if uuid in self._membership and uuid not in execution.stopped:
                self._send_to_member(uuid, p.TerminateExecution(execution.execution_id, f"the job failed: {failure}"))
        self._end_execution(job)
        job.terminating = None
        job.failure_text = failure
        self._set_status(job, S.FAILED, failure)

    def _publish_staged(self, job: JobRecord, snapshot_id: int, writes: list) -> None:
        """Snapshot ``snapshot_id`` committed: publish the exactly-once output it covers."""
        self.store.publish(job.job_id, snapshot_id, writes)

    def _end_execution(self, job: JobRecord) -> None:
        job.staged = []  # what was not applied belongs to epochs the next execution replays
        if job.execution is not None:
            self.snapshots.abort(job, "the execution ended")
            self._by_execution.pop(job.execution.execution_id, None)
            job.execution = None
