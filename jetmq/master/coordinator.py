"""The job coordinator: submits jobs, runs their executions on the members, ends them.

An execution runs on the members present when it starts. The coordinator sends
InitExecution to each, StartExecution once all are initialised, and ends the job
when all have finished (COMPLETED) or one failed (FAILED: the others are told to
terminate). When a member of a running execution leaves, the job restarts on the
members that are left, with a new execution id.
"""
from __future__ import annotations

import logging

from jetmq import protocol as p
from jetmq.config import JobConfig
from jetmq.core.partition import owner_table
from jetmq.errors import JobAlreadyExistsError, JobNotFoundError
from jetmq.ids import FlakeIdGenerator, id_to_string
from jetmq.job_status import JobStatus
from jetmq.master.jobs import ExecutionRecord, JobRecord, now_ms
from jetmq.master.membership import ChangeKind, Membership, MembershipChange
from jetmq.master.store import NamedStore
from jetmq.transport import Incoming

log = logging.getLogger(__name__)


class JobCoordinator:
    def __init__(self, membership: Membership, send, ids: FlakeIdGenerator, store: NamedStore):
        """``send(member_uuid, msg)`` reaches a member."""
        self._membership = membership
        self._send_to_member = send
        self._ids = ids
        self.store = store
        self.jobs: dict[int, JobRecord] = {}
        self._by_execution: dict[int, JobRecord] = {}
        membership.add_listener(self._on_membership_change)

    def handlers(self, reply) -> dict:
        """Request handlers for the master's loop; ``reply(incoming, msg)`` answers."""
        self._reply = reply
        return {
            p.SubmitJob: self._on_submit,
            p.GetJob: self._on_get_job,
            p.GetJobs: self._on_get_jobs,
            p.GetMap: lambda i: reply(i, p.SerializedReply(self.store.map_entries_blob(i.msg.name))),
            p.GetList: lambda i: reply(i, p.SerializedReply(self.store.list_items_blob(i.msg.name))),
        }

    def member_handlers(self) -> dict:
        """Handlers of messages that only members send (the sender's uuid comes along)."""
        return {
            p.ExecutionInitialized: self._on_initialized,
            p.ExecutionFinished: self._on_finished,
            p.MapPutAll: lambda uuid, msg: self.store.map_put_all(msg.name, msg.entries),
            p.ListAddAll: lambda uuid, msg: self.store.list_add_all(msg.name, msg.items),
        }

    # ------------------------------------------------------------------ requests

    def _on_submit(self, incoming: Incoming) -> None:
        msg: p.SubmitJob = incoming.msg
        config = JobConfig.from_dict(msg.config)
        if config.name is not None:
            active = [j for j in self.jobs.values() if j.name == config.name and j.status.is_active]
            if active:
                if msg.if_absent:
                    self._reply(incoming, p.JobReply(active[0].summary()))
                    return
                raise JobAlreadyExistsError(f"Another active job with equal name ({config.name}) exists: "
                                            f"{active[0].id_string}")
        job = JobRecord(self._ids.new_id(), config, msg.dag, now_ms())
        self.jobs[job.job_id] = job
        log.info("job %s (%s) submitted", job.id_string, job.name)
        self._reply(incoming, p.JobReply(job.summary()))
        self._start_execution(job)

    def _job(self, job_id: int) -> JobRecord:
        job = self.jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(f"No job with name or id '{id_to_string(job_id)}' was found")
        return job

    def _on_get_job(self, incoming: Incoming) -> None:
        self._reply(incoming, p.JobReply(self._job(incoming.msg.job_id).summary()))

    def _on_get_jobs(self, incoming: Incoming) -> None:
        name = incoming.msg.name
        jobs = [j.summary() for j in self.jobs.values() if name is None or j.name == name]
        self._reply(incoming, p.JobsReply(tuple(jobs)))

    # ------------------------------------------------------------------ executions

    def _start_execution(self, job: JobRecord) -> None:
        records = self._membership.records()
        if not records:
            log.info("job %s waits for members", job.id_string)
            return
        execution = ExecutionRecord(self._ids.new_id(), tuple(r.info.uuid for r in records))
        job.execution = execution
        self._by_execution[execution.execution_id] = job
        job.transition(JobStatus.STARTING, f"execution {execution.execution_id} on {len(records)} members")
        members = tuple(r.info for r in records)
        owners = tuple(owner_table([m.uuid for m in members]))
        config = job.config.to_dict()
        for index, member in enumerate(members):
            self._send_to_member(member.uuid, p.InitExecution(
                job.job_id, execution.execution_id, index, members, owners, config, job.dag))

    def _current(self, uuid: str, execution_id: int) -> JobRecord | None:
        job = self._by_execution.get(execution_id)
        if job is None or job.execution is None or job.execution.execution_id != execution_id:
            return None  # an old execution's late message
        if uuid not in job.execution.member_uuids:
            return None
        return job

    def _on_initialized(self, uuid: str, msg: p.ExecutionInitialized) -> None:
        job = self._current(uuid, msg.execution_id)
        if job is None or job.status is not JobStatus.STARTING:
            return
        if msg.failure is not None:
            self._fail(job, msg.failure)
            return
        execution = job.execution
        execution.initialized.add(uuid)
        if execution.initialized == set(execution.member_uuids):
            for member_uuid in execution.member_uuids:
                self._send_to_member(member_uuid, p.StartExecution(execution.execution_id))
            job.transition(JobStatus.RUNNING, "every member initialised the execution")

    def _on_finished(self, uuid: str, msg: p.ExecutionFinished) -> None:
        job = self._current(uuid, msg.execution_id)
        if job is None or job.status.is_terminal:
            return
        if msg.failure is not None:
            self._fail(job, msg.failure)
            return
        execution = job.execution
        execution.finished.add(uuid)
        if execution.finished == set(execution.member_uuids):
            self._end_execution(job)
            job.transition(JobStatus.COMPLETED, "every member completed")

    def _fail(self, job: JobRecord, failure: str) -> None:
        self._terminate(job, f"the job failed: {failure}")
        job.failure_text = failure
        job.transition(JobStatus.FAILED, failure)

    def _terminate(self, job: JobRecord, reason: str) -> None:
        """Tell every member of the current execution to drop it."""
        execution = job.execution
        if execution is None:
            return
        for member_uuid in execution.member_uuids:
            if member_uuid in self._membership and member_uuid not in execution.finished:
                self._send_to_member(member_uuid, p.TerminateExecution(execution.execution_id, reason))
        self._end_execution(job)

    def _end_execution(self, job: JobRecord) -> None:
        if job.execution is not None:
            self._by_execution.pop(job.execution.execution_id, None)
            job.execution = None

    # ------------------------------------------------------------------ membership

    def _on_membership_change(self, change: MembershipChange) -> None:
        if change.kind is ChangeKind.ADDED:
            for job in self.jobs.values():
                if job.status is JobStatus.NOT_RUNNING and job.execution is None:
                    self._start_execution(job)
            return
        uuid = change.member.uuid
        for job in list(self.jobs.values()):
            execution = job.execution
            if execution is None or uuid not in execution.member_uuids or job.status.is_terminal:
                continue
            self._terminate(job, f"member {uuid} left the cluster")
            job.transition(JobStatus.NOT_RUNNING, f"member {uuid} ({change.member.address}) left: restarting")
            self._start_execution(job)
