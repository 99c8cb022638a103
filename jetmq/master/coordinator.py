"""The job coordinator: Jet's job state machine, driving executions on the members.

It is the one owner of the master's job records: the topology policy and the client
requests ask it, and only it changes them. An execution runs on the members present
when it starts: InitExecution to each (naming the snapshot the members read their
state from), StartExecution once all are initialised; the job COMPLETES when every
member's part completed and its exactly-once output is published, and FAILS when one
fails (the others are told to terminate). Cancel, suspend and restart terminate the
execution: the job shows COMPLETING until every member has stopped, then becomes
FAILED (cancelled), SUSPENDED, or starts again. Every status change is saved in the
data dir (off the loop), so a restarted master finds its jobs.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from jetmq import protocol as p
from jetmq.config import METRICS_COLLECTION_INTERVAL_MS, JobConfig
from jetmq.errors import IllegalJobStateError, JetError, JobAlreadyExistsError, JobNotFoundError
from jetmq.ids import FlakeIdGenerator, id_to_string
from jetmq.job_status import CANCELLATION_FAILURE, JobStatus
from jetmq.master.jobs import (AfterTermination, ExecutionEnd, JobRecord, Termination, TerminationMode,
                               TerminationStage, now_ms)
from jetmq.master.execution_control import FINAL_EPOCH, RESTART_COALESCE_MAX_S, RESTART_COALESCE_S, \
    ExecutionControl
from jetmq.master.membership import Membership
from jetmq.master.observables import ObservableStore
from jetmq.master.persistence import RecordWriter
from jetmq.master.repository import JobRepository
from jetmq.master.snapshots import SnapshotCoordinator
from jetmq.master.store import NamedStore
from jetmq.master.waiters import Waiters

log = logging.getLogger(__name__)

S = JobStatus
#: What the execution history says of an execution a termination ended.
_ENDS = {AfterTermination.CANCEL: ExecutionEnd.CANCELLED, AfterTermination.SUSPEND: ExecutionEnd.SUSPENDED,
         AfterTermination.RESTART: ExecutionEnd.RESTARTED}


class JobCoordinator(ExecutionControl):
    def __init__(self, membership: Membership, send, ids: FlakeIdGenerator, store: NamedStore,
                 repository: JobRepository, snapshot_root: Path, store_io, bulk_io):
        """``send(member_uuid, msg)`` reaches a member; ``store_io`` writes job records,
        commits and the structures log, in order; ``bulk_io`` copies and deletes snapshots."""
        self._membership = membership
        self._send_to_member = send
        self._ids = ids
        self.store = store
        self.observables = ObservableStore()
        self.waiters = Waiters()  # clients' requests held until a job's status or an observable changes
        self.observables.on_change = lambda name: self.waiters.changed(("observable", name))
        self.repository = repository
        self._records = RecordWriter(repository, store_io)
        self.snapshots = SnapshotCoordinator(snapshot_root, send, store_io, bulk_io, store, self._records,
                                             self._on_terminal_snapshot, self._on_snapshot_settled)
        self._jobs: dict[int, JobRecord] = {}
        self._by_execution: dict[int, JobRecord] = {}
        self._cluster_ready = False  # no execution starts before the first members have all joined
        self._leaving: set[str] = set()  # members asked to leave: no new execution uses them
        self._next_flush = 0.0
        self.metrics_interval_ms = METRICS_COLLECTION_INTERVAL_MS  # how often members report metrics
        #: ``(job, uuid, address, reason)``: what to do when a member cannot reach another
        #: (the topology policy decides, as for a member that left)
        self.on_peer_unreachable = lambda job, uuid, address, reason: self._fail(job, reason)

    def member_handlers(self) -> dict:
        """Handlers of messages that only members send (the sender's uuid comes along)."""
        return {
            p.ExecutionInitialized: self._on_initialized,
            p.ExecutionFinished: self._on_finished,
            p.MapPutAll: lambda uuid, msg: self.store.map_put_all(msg.name, msg.entries),
            p.ListAddAll: lambda uuid, msg: self.store.list_add_all(msg.name, msg.items),
            p.ObservableAttach: lambda uuid, msg: self.observables.attach(msg.name, msg.job_id),
            p.ObservablePublish: lambda uuid, msg: self.observables.publish(msg.name, msg.items),
            p.SnapshotPhase1Done: self._on_phase1_done,
            p.PeerUnreachable: self._on_peer_unreachable,
            p.ExecutionMetrics: self._on_metrics,
        }

    def tick(self, now: float) -> None:
        """Called after every poll of the master's loop."""
        self._records.retry(self._jobs, now)
        if now >= self._next_flush:
            self._next_flush = now + 1.0
            self.store.flush()
        self.snapshots.tick(list(self._jobs.values()), now)
        self.start_waiting_jobs(now)
        self.waiters.expire(now)

    # ------------------------------------------------------------------ what others may ask

    def jobs(self, name: str | None = None) -> list[JobRecord]:
        return [j for j in self._jobs.values() if name is None or j.name == name]

    def job(self, job_id: int) -> JobRecord:
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(f"No job with name or id '{id_to_string(job_id)}' was found")
        return job

    def describe(self, job: JobRecord) -> p.JobDescription:
        """What `jet describe` shows: the job's summary and config, its failure taken apart,
        its execution history, the members of its current (else last) execution, and the
        metrics reports held for it (left opaque: the client decodes them)."""
        reason = job.failure_reason
        if job.execution is not None:
            uuids = job.execution.member_uuids
        else:
            uuids = tuple(job.executions[-1]["members"]) if job.executions else ()
        members = []
        for uuid in uuids:
            record = self._membership.get(uuid)
            members.append(p.DescribedMember(uuid, record.info.address if record else None,
                                             record.info.pid if record else None))
        executions = tuple(p.ExecutionInfo(e["number"], e["execution_id"], e["start_time"], e["end_time"],
                                           tuple(e["members"]), e["ended"], e["reason"]) for e in job.executions)
        return p.JobDescription(job.summary(), job.config.to_dict(), reason and reason.exception,
                                reason and reason.message, reason and reason.where, executions, tuple(members),
                                self.metrics_interval_ms, p.pack_serialized(list(job.metrics.values())),
                                job.outline)

    def active_named(self, name: str) -> JobRecord | None:
        return next((j for j in self._jobs.values() if j.name == name and j.status.is_active), None)

    def jobs_on(self, uuid: str) -> list[JobRecord]:
        """Jobs whose current execution runs on the member ``uuid``."""
        return [j for j in self._jobs.values() if j.execution is not None and uuid in j.execution.member_uuids]

    def named_snapshots(self, done) -> None:
        self.snapshots.named(done)

    def delete_named_snapshot(self, name: str, done) -> None:
        self.snapshots.delete_named(name, done)

    def read_map(self, name: str, answer) -> None:
        """``answer`` the map's entries, as of every change and snapshot accepted so far."""
        self.store.read_map(name, answer)

    def read_list(self, name: str, answer) -> None:
        """``answer`` the list's items, as of every change and snapshot accepted so far."""
        self.store.read_list(name, answer)

    def read_observable(self, name: str, from_seq: int, max_items: int):
        return self.observables.read(name, from_seq, max_items)

    def available_members(self) -> list:
        """Members a new execution may use: all but those leaving."""
        return [r for r in self._membership.records() if r.info.uuid not in self._leaving]

    # ------------------------------------------------------------------ recovery

    def load(self) -> None:
        """Bring back the jobs of an earlier master on this data dir (at start, before serving).

        Finished and suspended jobs stay as they were; jobs that were running start
        again once members are here, from their last snapshot (or from scratch without one).
        """
        records = self.repository.load_all()
        for job in self.repository.expired(records, now_ms()):
            self._records.delete(job)
            records.remove(job)
        for job in records:
            self._jobs[job.job_id] = job
            published = self.store.published_snapshot(job.job_id)
            if published == FINAL_EPOCH and not job.status.is_terminal:
                # the old master published the job's last output but died before recording it complete
                job.status, job.completion_time = S.COMPLETED, now_ms()
                job.interrupted(ExecutionEnd.COMPLETED, "every member completed (recorded by the next master)")
                self._records.save(job)
                continue
            if job.uses_snapshots and job.last_snapshot_id > published:
                # the old master committed the snapshot but died before publishing its output
                log.info("job %s: publishing the output of snapshot %d, interrupted by a crash",
                         job.id_string, job.last_snapshot_id)
                self.snapshots.publish(job, job.last_snapshot_id, published)
            if job.status in (S.STARTING, S.RUNNING, S.COMPLETING):
                job.status = S.NOT_RUNNING  # not a transition: the executions died with the old master
                job.interrupted(ExecutionEnd.INTERRUPTED, "the master stopped while it ran")
                self._records.save(job)
        log.info("loaded %d jobs from %s", len(records), self.repository.root)

    def cluster_ready(self) -> None:
        """The master's forked members have all joined: start the jobs that wait."""
        self._cluster_ready = True
        self.start_waiting_jobs(time.monotonic())

    def start_waiting_jobs(self, now: float | None = None) -> None:
        """Start an execution for every job that waits for one and may start now."""
        now = time.monotonic() if now is None else now
        for job in list(self._jobs.values()):
            if (job.status is S.NOT_RUNNING and job.execution is None and now >= job.restart_at
                    and not self.snapshots.committing(job)):
                self._start_execution(job)

    def members_joined(self) -> None:
        """Members joined: protected jobs need a larger quorum. Jobs that wait start on the
        tick that ends this turn of the loop, after the new member has had its Welcome."""
        size = len(self.available_members())
        for job in self._jobs.values():
            if job.config.split_brain_protection and job.status.is_active:
                job.quorum = max(job.quorum, size // 2 + 1)  # raised as members join, never lowered

    def members_leaving(self, uuids: set[str]) -> None:
        self._leaving |= uuids

    def member_gone(self, uuid: str) -> None:
        self._leaving.discard(uuid)

    @property
    def leaving(self) -> frozenset[str]:
        return frozenset(self._leaving)

    def postpone_restarts(self, now: float) -> None:
        """Another member left: jobs about to restart wait a little more, so one restart
        covers the whole wave (never longer than RESTART_COALESCE_MAX_S in all)."""
        for job in self._jobs.values():
            if job.restart_at > now and job.restart_after_loss > 0:
                job.restart_at = min(now + RESTART_COALESCE_S, job.restart_after_loss + RESTART_COALESCE_MAX_S)

    # ------------------------------------------------------------------ metrics

    def _on_metrics(self, uuid: str, msg: p.ExecutionMetrics) -> None:
        """A member's latest metrics of the job's current execution replace its previous ones.
        The master keeps them as bytes, never reading them: a client decodes them. A new
        execution starts without any; a finished job keeps its last ones only with
        store_metrics_after_job_completion (as Jet)."""
        job = self._current(uuid, msg.execution_id)
        if job is not None and job.config.metrics_enabled and not job.status.is_terminal:
            job.metrics[uuid] = msg.data

    # ------------------------------------------------------------------ status

    def _set_status(self, job: JobRecord, status: JobStatus, why: str) -> None:
        job.transition(status, why)
        self._records.save(job)
        if status is S.RUNNING:
            self.snapshots.execution_running(job)
        if status.is_terminal:
            if not job.config.store_metrics_after_job_completion:
                job.metrics = {}  # as Jet: a finished job's metrics go, unless it asked to keep them
            self.snapshots.delete_all(job)  # as Jet: a finished job's snapshots go with it
            self.observables.job_ended(job.job_id, job.failure_text if status is S.FAILED else None)
            self._prune()
        self.waiters.changed(("job", job.job_id))  # pushed to clients waiting in Job.join()

    def _prune(self) -> None:
        for job in self.repository.expired(list(self._jobs.values()), now_ms()):
            self._records.delete(job)
            del self._jobs[job.job_id]

    # ------------------------------------------------------------------ submission

    def submit(self, config: JobConfig, dag: bytes, if_absent: bool, done, outline: dict | None = None) -> None:
        """A new job, started once its record is written; with ``if_absent``, the active
        job of that name if any. ``done(job, error)`` answers."""
        if config.name is not None:
            active = self.active_named(config.name)
            if active is not None:
                if if_absent:
                    done(active, None)
                    return
                raise JobAlreadyExistsError(
                    f"Another active job with equal name ({config.name}) exists: {active.id_string}")
        job = JobRecord(self._ids.new_id(), config, dag, now_ms(), outline=outline)
        if config.split_brain_protection:
            job.quorum = len(self.available_members()) // 2 + 1
        job.restart_at = float("inf")  # not before it is recorded
        self._jobs[job.job_id] = job  # a name is taken from now on

        def recorded(error) -> None:
            if error is not None:
                del self._jobs[job.job_id]
                done(None, JetError(f"cannot record the job in the data directory: "
                                    f"{getattr(error, 'strerror', None) or error}"))
                return
            log.info("job %s (%s) submitted", job.id_string, job.name)
            job.restart_at = 0.0
            if job.status is S.NOT_RUNNING:
                self._start_execution(job)
            done(job, None)
        self._records.create(job, recorded)

    def export(self, job: JobRecord, name: str, cancel: bool, done) -> None:
        """Export the job's state as the named snapshot (then cancel it, if asked);
        ``done(error or None)`` is called once it is written, or failed."""
        if job.status is S.SUSPENDED:
            self._set_status(job, S.SUSPENDED_EXPORTING_SNAPSHOT, f"exporting snapshot '{name}'")

            def exported(error: str | None) -> None:
                self._set_status(job, S.SUSPENDED, f"snapshot '{name}' exported")
                if cancel and error is None:
                    self.cancel(job)
                done(error)
            self.snapshots.export_last(job, name, exported)
            return
        if job.status is not S.RUNNING:
            raise IllegalJobStateError(
                f"Cannot export snapshot, job is neither RUNNING nor SUSPENDED, but {job.status.name}")
        if cancel:
            self._check_not_terminating(job, TerminationMode.CANCEL_GRACEFUL)
            job.termination = Termination(TerminationMode.CANCEL_GRACEFUL, TerminationStage.AWAITING_SNAPSHOT,
                                          f"cancelled after exporting snapshot '{name}'")
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
        if job.termination is not None and job.termination.mode.then is AfterTermination.CANCEL:
            return
        # overrides a pending suspend or restart
        job.termination = Termination(TerminationMode.CANCEL_FORCEFUL, TerminationStage.STOPPING, "cancelled")
        self._terminate(job, "cancelled")

    def suspend(self, job: JobRecord) -> None:
        self.request_termination(job, TerminationMode.SUSPEND_GRACEFUL, "suspended on request")

    def restart(self, job: JobRecord) -> None:
        self.request_termination(job, TerminationMode.RESTART_GRACEFUL, "restarted on request")

    def resume(self, job: JobRecord) -> None:
        """SUSPENDED -> NOT_RUNNING -> STARTING; a no-op for a job that is not suspended."""
        if job.status is not S.SUSPENDED:
            return
        job.failure_text = None  # a failure that suspended it stays in its failures
        self._set_status(job, S.NOT_RUNNING, "resumed")
        self._start_execution(job)

    def _check_not_terminating(self, job: JobRecord, mode: TerminationMode) -> None:
        if job.termination is not None:
            raise IllegalJobStateError(f"Cannot {mode.name}: Job is already terminating in mode: "
                                       f"{job.termination}")

    def request_termination(self, job: JobRecord, mode: TerminationMode, reason: str | None = None) -> None:
        """Suspend or restart a running job; ``reason`` goes into the job's execution history
        (None: a member leaving, or scaling up, whichever applies; see _termination_reason).

        With a processing guarantee, a graceful mode first takes a terminal snapshot
        (COMPLETING meanwhile) and the next execution starts from it; with NONE the
        execution stops at once and the state starts empty (docs/jet-compatibility.md §3).
        """
        self._check_not_terminating(job, mode)
        if job.status is not S.RUNNING:
            raise IllegalJobStateError(f"Cannot {mode.name}, job status is {job.status.name}, should be RUNNING")
        reason = reason if reason is not None else self._termination_reason(job, mode)
        if job.uses_snapshots and mode.graceful:
            job.termination = Termination(mode, TerminationStage.AWAITING_SNAPSHOT, reason)
            self._set_status(job, S.COMPLETING, f"{mode.name}: taking a terminal snapshot")
            if job.snapshot is None:
                self.snapshots.start(job, terminal=True)
            return
        job.termination = Termination(mode, TerminationStage.STOPPING, reason)
        self._terminate(job, mode.name)

    def _termination_reason(self, job: JobRecord, mode: TerminationMode) -> str:
        """Why the topology policy moves a running job (it asks without a reason): members of
        its execution are leaving, or the cluster has more members than the execution."""
        running_on = job.execution.member_uuids if job.execution is not None else ()
        leaving = sorted(self._leaving.intersection(running_on))
        if leaving:
            return f"member {', '.join(leaving)} is leaving the cluster"
        size = len(self.available_members())
        if size > len(running_on):
            return f"scaling up from {len(running_on)} to {size} members"
        return mode.name

    def terminate(self, job: JobRecord, mode: TerminationMode, reason: str) -> None:
        """Stop the job's execution at once; when every member has stopped, apply ``mode``."""
        job.termination = Termination(mode, TerminationStage.STOPPING, reason)
        self._terminate(job, reason)

    def _on_terminal_snapshot(self, job: JobRecord, success: bool) -> None:
        """The terminal snapshot ended: stop the execution (a failed one: from the previous snapshot)."""
        if job.execution is not None and job.termination is not None:
            job.termination.stage = TerminationStage.STOPPING
            self._terminate(job, f"{job.termination}: terminal snapshot "
                                 f"{'taken' if success else 'failed, the previous one will be used'}")

    def _on_snapshot_settled(self, job: JobRecord) -> None:
        execution = job.execution
        if execution is not None and execution.complete_after_commit and not job.status.is_terminal:
            self._complete(job)
        elif job.status is S.NOT_RUNNING and execution is None:
            self.start_waiting_jobs()

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
            job.termination = None  # the job ended by itself while being terminated
            if not execution.publishing:
                self._complete(job)
            return
        termination, job.termination = job.termination, None
        mode = termination.mode
        self._end_execution(job, _ENDS[mode.then], termination.reason or mode.name)
        if mode.then is AfterTermination.CANCEL:
            job.failure_text = CANCELLATION_FAILURE
            self._set_status(job, S.FAILED, "cancelled")
        elif mode.then is AfterTermination.SUSPEND:
            self._set_status(job, S.SUSPENDED, mode.name)
        elif job.restart_at > time.monotonic():  # a member was lost: wait for the rest of the wave
            self._set_status(job, S.NOT_RUNNING, f"{mode.name}: restarting once the membership settles")
        else:
            self._start_execution(job)
