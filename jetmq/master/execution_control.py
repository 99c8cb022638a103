"""The executions of a job, as the coordinator drives them: start, initialisation,
completion, and failure (the job's restart strategy decides what a failure of its own
code leads to; see jetmq/restart_strategy.py). A part of JobCoordinator, kept apart
so that each reads in one sitting: it uses the coordinator's records and helpers.
"""
from __future__ import annotations

import logging
import time

from jetmq import protocol as p
from jetmq.core.partition import owner_table
from jetmq.ids import id_to_string
from jetmq.job_status import JobStatus
from jetmq.master.jobs import ExecutionEnd, ExecutionRecord, JobRecord, TerminationMode, TerminationStage, now_ms
from jetmq.storage import snapshots as snapshot_store

log = logging.getLogger(__name__)

S = JobStatus
#: The epoch of a completed execution's last output: after every snapshot.
FINAL_EPOCH = 1 << 62
#: Members lost close together cause one restart: a job whose member left waits this long
#: (more, while members keep leaving, up to RESTART_COALESCE_MAX_S) before it starts again.
RESTART_COALESCE_S = 0.25
RESTART_COALESCE_MAX_S = 2.0
#: Failures a job record keeps (the newest).
FAILURES_KEPT = 50


class ExecutionControl:
    def _start_execution(self, job: JobRecord) -> None:
        if self.snapshots.committing(job):
            if job.status is not S.NOT_RUNNING:
                self._set_status(job, S.NOT_RUNNING, "waiting for its snapshot to be committed")
            return  # started when the commit is done (its snapshot may be the one to restore)
        records = self.available_members()
        quorum_missing = job.config.split_brain_protection and len(records) < job.quorum
        if not records or not self._cluster_ready or quorum_missing:
            if job.status is not S.NOT_RUNNING:
                self._set_status(job, S.NOT_RUNNING, "waiting for members")
            log.info("job %s waits for members (%d present%s)", job.id_string, len(records),
                     f", quorum {job.quorum}" if job.config.split_brain_protection else "")
            return
        restore = self.snapshots.restore_source(job)
        execution = ExecutionRecord(self._ids.new_id(), tuple(r.info.uuid for r in records))
        job.execution = execution
        job.executions_started += 1
        job.execution_started(execution)  # in the job's history, saved with the status below
        job.metrics = {}  # the job's metrics are its current execution's
        self._by_execution[execution.execution_id] = job
        self._set_status(job, S.STARTING, f"execution {id_to_string(execution.execution_id)} on "
                                          f"{len(records)} members")
        members = tuple(r.info for r in records)
        owners = tuple(owner_table([m.uuid for m in members]))
        config = job.config.to_dict()
        snapshot_id, restore_dir = restore if restore is not None else (-1, None)
        metrics_interval_ms = self.metrics_interval_ms if job.config.metrics_enabled else 0
        if restore is not None:
            log.info("job %s restores from snapshot %s", job.id_string,
                     snapshot_id if snapshot_id >= 0 else f'"{job.config.initial_snapshot_name}"')
        for index, member in enumerate(members):
            self._send_to_member(member.uuid, p.InitExecution(
                job.job_id, execution.execution_id, index, members, owners, config, job.dag, snapshot_id,
                restore_dir, metrics_interval_ms))

    def _current(self, uuid: str, execution_id: int) -> JobRecord | None:
        job = self._by_execution.get(execution_id)
        if job is None or job.execution is None or job.execution.execution_id != execution_id:
            return None  # an old execution's late message
        return job if uuid in job.execution.member_uuids else None

    def _on_phase1_done(self, uuid: str, msg: p.SnapshotPhase1Done) -> None:
        job = self._current(uuid, msg.execution_id)
        if job is not None:
            self.snapshots.on_phase1_done(job, uuid, msg)

    def _on_peer_unreachable(self, uuid: str, msg: p.PeerUnreachable) -> None:
        job = self._current(uuid, msg.execution_id)
        if job is not None and job.status in (S.STARTING, S.RUNNING) and job.termination is None:
            job.execution.stopped.add(uuid)  # the reporter dropped its part already
            self.on_peer_unreachable(job, msg.member_uuid, msg.address, f"member {uuid}: {msg.reason}")

    def _on_initialized(self, uuid: str, msg: p.ExecutionInitialized) -> None:
        job = self._current(uuid, msg.execution_id)
        if job is None or job.status is not S.STARTING:
            return
        if msg.failure is not None:
            self._failed(job, msg.failure)
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
            self._failed(job, msg.failure)
            return
        execution.stopped.add(uuid)
        if msg.failure is None and not msg.terminated:
            execution.succeeded.add(uuid)
            if msg.final_output is not None:
                execution.final_outputs[execution.member_uuids.index(uuid)] = msg.final_output
            self.snapshots.member_completed(job, uuid)
        if job.status is S.COMPLETING:
            self._maybe_terminated(job)
        elif execution.succeeded >= set(execution.member_uuids):
            self._complete(job)

    def _complete(self, job: JobRecord) -> None:
        """The whole execution succeeded: publish the output no snapshot covered, then COMPLETED.

        A snapshot being committed goes first: the members' final output holds what it
        covers too, until it has committed (then only what came after it is published
        here) or failed (then all of it is)."""
        execution = job.execution
        execution.publishing = True
        if self.snapshots.committing(job):
            execution.complete_after_commit = True  # the coordinator calls again once it settles
            return
        execution.complete_after_commit = False
        after, root = job.last_snapshot_id, self.snapshots.root
        refs = list(execution.final_outputs.values())

        def read_writes() -> list:
            writes = [w for ref in refs for w in snapshot_store.read_staged(root, ref) if w[0] > after]
            return [w[1:] for w in sorted(writes, key=lambda w: w[0])]

        def published(error) -> None:
            if job.execution is not execution or job.status.is_terminal:
                return
            if error is not None:
                job.failure_text = f"the job's output could not be published: {error}"
                self._end_execution(job, ExecutionEnd.FAILED, job.failure_text)
                self._set_status(job, S.FAILED, job.failure_text)
            else:
                self._end_execution(job, ExecutionEnd.COMPLETED, "every member completed")
                self._set_status(job, S.COMPLETED, "every member completed")
        self.store.publish(job.job_id, FINAL_EPOCH, read_writes, published)

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
            if job.termination is not None and job.termination.stage is not TerminationStage.STOPPING:
                # no snapshot can complete without the member: stop now, and the next
                # execution starts from the last good snapshot
                job.termination.stage = TerminationStage.STOPPING
                self._terminate(job, f"member {uuid} left while the job was terminating")
            else:
                self._maybe_terminated(job)
            return True
        return False

    def restart_after_member_loss(self, job: JobRecord, uuid: str) -> None:
        """A member of the job's execution is gone: stop the execution, and start again once
        the membership has settled a moment (one restart for a wave of losses)."""
        now = time.monotonic()
        if job.restart_at <= now:  # the first loss of a wave
            job.restart_after_loss = now
        job.restart_at = min(now + RESTART_COALESCE_S, job.restart_after_loss + RESTART_COALESCE_MAX_S)
        self.terminate(job, TerminationMode.RESTART_FORCEFUL, f"member {uuid} left the cluster")

    def _failed(self, job: JobRecord, failure: str) -> None:
        """The job's own code failed (a processor raised): restart it after the delay its
        restart strategy gives, else suspend it (suspend_on_failure), else fail it. Every
        failure is recorded with its time, its cause and what followed."""
        now = now_ms()
        times = [f["time"] for f in job.failures] + [now]
        delay_ms = job.config.restart_strategy.delay_after(times)
        if delay_ms is not None:
            then = f"restarted after {delay_ms} ms ({job.config.restart_strategy})"
        elif job.config.suspend_on_failure:
            then = "suspended"
        else:
            then = "failed"
        job.failures = (job.failures + [{"time": now, "cause": failure, "then": then}])[-FAILURES_KEPT:]
        log.warning("job %s: failure %d: %s; %s", job.id_string, len(times), failure, then)
        if delay_ms is None and not job.config.suspend_on_failure:
            self._fail(job, failure)
            return
        self._stop_members(job, f"the job failed: {failure}")
        self._end_execution(job, ExecutionEnd.RESTARTED if delay_ms is not None else ExecutionEnd.SUSPENDED, failure)
        job.termination = None
        if delay_ms is None:
            job.failure_text = failure  # kept while it is suspended
            self._set_status(job, S.SUSPENDED, f"suspended after a failure: {failure}")
        else:
            job.restart_at = time.monotonic() + delay_ms / 1000
            self._set_status(job, S.NOT_RUNNING, f"{then} the failure: {failure}")

    def _stop_members(self, job: JobRecord, reason: str) -> None:
        execution = job.execution
        for uuid in execution.member_uuids:
            if uuid in self._membership and uuid not in execution.stopped:
                self._send_to_member(uuid, p.TerminateExecution(execution.execution_id, reason))

    def _fail(self, job: JobRecord, failure: str) -> None:
        self._stop_members(job, f"the job failed: {failure}")
        self._end_execution(job, ExecutionEnd.FAILED, failure)
        job.termination = None
        job.failure_text = failure
        self._set_status(job, S.FAILED, failure)

    def _end_execution(self, job: JobRecord, ended: ExecutionEnd, reason: str) -> None:
        """The job's execution is over: its history says how (``ended``) and why."""
        if job.execution is not None:
            job.execution_ended(ended, reason)
            self.snapshots.abort(job, "the execution ended")
            self.snapshots.delete_execution_output(job, job.execution.execution_id)
            self._by_execution.pop(job.execution.execution_id, None)
            job.execution = None
