"""Clients' requests to the master, answered by the job coordinator, the one owner of jobs.

A request whose answer needs disk work (a submission, an export, the list of named
snapshots) is answered when that work is done, off the loop; the loop goes on meanwhile.
A read of a map or list is answered once the changes accepted before it are applied.
"""
from __future__ import annotations

from jetmq import protocol as p
from jetmq.config import JobConfig
from jetmq.errors import JobNotFoundError, SnapshotNotFoundError
from jetmq.master.coordinator import JobCoordinator
from jetmq.names import check_path_name
from jetmq.transport import Incoming


class ClientRequests:
    def __init__(self, coordinator: JobCoordinator, reply):
        """``reply(incoming, msg)`` answers a request."""
        self._jobs = coordinator
        self._reply = reply

    def handlers(self) -> dict:
        jobs, reply = self._jobs, self._reply
        return {
            p.SubmitJob: self._on_submit,
            p.GetJob: lambda i: reply(i, p.JobReply(jobs.job(i.msg.job_id).summary())),
            p.GetJobMetrics: lambda i: reply(i, p.JobMetricsReply(p.pack_serialized(
                list(jobs.job(i.msg.job_id).metrics.values())))),
            p.DescribeJob: lambda i: reply(i, jobs.describe(jobs.job(i.msg.job_id))),
            p.GetJobs: lambda i: reply(i, p.JobsReply(tuple(j.summary() for j in jobs.jobs(i.msg.name)))),
            p.JobAction: self._on_action,
            p.ExportSnapshot: self._on_export,
            p.GetSnapshots: lambda i: jobs.named_snapshots(lambda infos: reply(i, p.SnapshotsReply(tuple(
                p.SnapshotSummary(s.path.name, s.creation_time, s.size_bytes, s.job_id, s.job_name)
                for s in infos)))),
            p.DeleteSnapshot: self._on_delete_snapshot,
            p.GetMap: lambda i: jobs.read_map(i.msg.name, lambda blob: reply(i, p.SerializedReply(blob))),
            p.GetList: lambda i: jobs.read_list(i.msg.name, lambda blob: reply(i, p.SerializedReply(blob))),
            p.GetObservable: lambda i: reply(i, p.ObservableItems(
                *jobs.read_observable(i.msg.name, i.msg.from_seq, i.msg.max_items))),
            p.WaitJob: self._on_wait_job,
            p.WaitObservable: self._on_wait_observable,
        }

    def _on_wait_job(self, incoming: Incoming) -> None:
        """Answered when the job's status changes (pushed from the coordinator)."""
        msg: p.WaitJob = incoming.msg

        def answer() -> None:
            try:
                summary = self._jobs.job(msg.job_id).summary()
            except JobNotFoundError as e:  # pruned meanwhile
                self._error(incoming, e)
                return
            self._reply(incoming, p.JobReply(summary))

        if self._jobs.job(msg.job_id).status.name != msg.known_status or msg.timeout_ms <= 0:
            answer()
        else:
            self._jobs.waiters.hold(("job", msg.job_id), msg.timeout_ms / 1000, answer)

    def _on_wait_observable(self, incoming: Incoming) -> None:
        """Answered when items come or the observable ends."""
        msg: p.WaitObservable = incoming.msg

        def answer() -> None:
            self._reply(incoming, p.ObservableItems(*self._jobs.read_observable(msg.name, msg.from_seq,
                                                                                  msg.max_items)))

        if self._jobs.observables.has_news(msg.name, msg.from_seq) or msg.timeout_ms <= 0:
            answer()
        else:
            self._jobs.waiters.hold(("observable", msg.name), msg.timeout_ms / 1000, answer)

    def _error(self, incoming: Incoming, error: Exception) -> None:
        self._reply(incoming, p.ErrorReply(type(error).__name__, str(error)))

    def _on_submit(self, incoming: Incoming) -> None:
        msg: p.SubmitJob = incoming.msg

        def done(job, error) -> None:
            if error is not None:
                self._error(incoming, error)
            else:
                self._reply(incoming, p.JobReply(job.summary()))
        self._jobs.submit(JobConfig.from_dict(msg.config), msg.dag, msg.if_absent, done, msg.outline)

    def _on_action(self, incoming: Incoming) -> None:
        msg: p.JobAction = incoming.msg
        job = self._jobs.job(msg.job_id)
        actions = {"cancel": self._jobs.cancel, "suspend": self._jobs.suspend, "restart": self._jobs.restart,
                   "resume": self._jobs.resume}
        if msg.action not in actions:
            raise ValueError(f"unknown job action '{msg.action}'")
        actions[msg.action](job)
        self._reply(incoming, p.JobReply(job.summary()))

    def _on_export(self, incoming: Incoming) -> None:
        """The reply waits until the snapshot is written (or failed)."""
        msg: p.ExportSnapshot = incoming.msg
        check_path_name("snapshot", msg.name)  # a peer need not be our client: check again
        job = self._jobs.job(msg.job_id)

        def done(error: str | None) -> None:
            self._reply(incoming, p.ErrorReply("JetError", error) if error else p.JobReply(job.summary()))

        self._jobs.export(job, msg.name, msg.cancel, done)

    def _on_delete_snapshot(self, incoming: Incoming) -> None:
        name = check_path_name("snapshot", incoming.msg.name)

        def done(found: bool) -> None:
            if found:
                self._reply(incoming, p.Ack())
            else:
                self._error(incoming, SnapshotNotFoundError(f"Didn't find a snapshot named '{name}'"))
        self._jobs.delete_named_snapshot(name, done)
