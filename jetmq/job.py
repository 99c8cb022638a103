"""The Job handle: a submitted job, as a client sees it."""
from __future__ import annotations

import time

from jetmq import protocol as p
from jetmq.config import JobConfig
from jetmq.core.metrics import JobMetrics, Measurement
from jetmq.core.metrics_context import decode_report
from jetmq.errors import CancellationError, ClusterUnreachableError, JobFailedError, JobTimeoutError
from jetmq.ids import id_to_string
from jetmq.job_status import CANCELLATION_FAILURE as CANCELLED, JobStatus
from jetmq.names import check_path_name
from jetmq.requester import Requester

#: How long the master holds one join() request before answering with the status as it
#: is (it answers at once when the status changes); then join() asks again.
JOIN_HOLD_S = 2.0
#: How long exporting a snapshot may take before the client gives up waiting.
EXPORT_TIMEOUT_S = 300.0


class Job:
    """A job on the cluster. Its status is read from the master on every access."""

    def __init__(self, requester: Requester, summary: p.JobSummary, config: JobConfig | None = None):
        self._requester = requester
        self._summary = summary
        self.config = config

    @property
    def id(self) -> int:
        return self._summary.job_id

    @property
    def id_string(self) -> str:
        return id_to_string(self.id)

    @property
    def name(self) -> str | None:
        return self._summary.name

    @property
    def submission_time(self) -> int:
        """Epoch milliseconds; it never changes, also not on restart."""
        return self._summary.submission_time

    @property
    def status(self) -> JobStatus:
        return JobStatus[self._refresh().status]

    @property
    def last_known_status(self) -> JobStatus:
        """The status as of the last request about this job, without asking the master."""
        return JobStatus[self._summary.status]

    @property
    def failure_text(self) -> str | None:
        return self._refresh().failure_text

    def metrics(self) -> dict:
        """The job's counters: executions started (a restart adds one), the members of
        the current execution, the last committed snapshot id (-1 for none)."""
        summary = self._refresh()
        return {"executions_started": summary.executions_started,
                "execution_members": list(summary.execution_members),
                "last_snapshot_id": summary.last_snapshot_id,
                "snapshot_in_progress": summary.snapshot_in_progress}

    def get_metrics(self) -> JobMetrics:
        """The job's metrics (Jet's ``Job.getMetrics()``): while it runs, the latest that
        the members of its execution reported (every metrics collection interval, 5 s by
        default); once it has finished, those of its last execution if its config has
        ``store_metrics_after_job_completion``, else none. None either with
        ``metrics_enabled=False``. See docs/operations.md for what is measured."""
        reports = p.unpack_serialized(self._requester.request(p.GetJobMetrics(self.id)).reports)
        return JobMetrics.of(Measurement(value, timestamp, tags)
                             for report in reports for tags, value, timestamp in decode_report(report))

    @property
    def failures(self) -> list[dict]:
        """Each failure of the job's own code: its time (epoch ms), its cause, and what
        followed (restarted, by the restart strategy; suspended; or failed)."""
        return [{"time": f.time, "cause": f.cause, "then": f.then} for f in self._refresh().failures]

    def _refresh(self) -> p.JobSummary:
        self._summary = self._requester.request(p.GetJob(self.id)).job
        return self._summary

    def join(self, timeout: float | None = None) -> None:
        """Wait for the job to finish; raise JobFailedError with its failure text if it failed.

        A suspended job has not finished: join keeps waiting. With ``timeout`` (seconds),
        raise JobTimeoutError when the job is still running then.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        summary = self._refresh()
        while True:
            status = JobStatus[summary.status]
            if status is JobStatus.COMPLETED:
                return
            if status is JobStatus.FAILED:
                if summary.failure_text == CANCELLED:
                    raise CancellationError(f"job {self.id_string} was cancelled")
                raise JobFailedError(summary.failure_text or "the job failed")
            hold = JOIN_HOLD_S if deadline is None else min(JOIN_HOLD_S, deadline - time.monotonic())
            if hold <= 0:
                raise JobTimeoutError(f"job {self.id_string} is still {status.name} after {timeout} s")
            summary = self._wait_for_change(status, hold)

    def _wait_for_change(self, status: JobStatus, hold: float) -> p.JobSummary:
        """The job's summary once its status is other than ``status`` (the master pushes
        the change), or after ``hold`` seconds. A connection lost meanwhile falls back
        to one plain request, which raises ClusterUnreachableError within the request
        timeout if the master stays unreachable."""
        request = p.WaitJob(self.id, status.name, int(hold * 1000))
        try:
            self._summary = self._requester.request(request, hold + self._requester.timeout_s).job
        except ClusterUnreachableError:
            return self._refresh()
        return self._summary

    def cancel(self) -> None:
        """Cancel the job: it ends FAILED with CancellationException; its snapshots go.

        Returns once the master has accepted; the job shows COMPLETING until every
        member has stopped it. Cancelling a finished job does nothing.
        """
        self._action("cancel")

    def suspend(self) -> None:
        """Suspend a RUNNING job (IllegalJobStateError otherwise); it becomes SUSPENDED."""
        self._action("suspend")

    def resume(self) -> None:
        """Resume a SUSPENDED job; does nothing to a job that is not suspended."""
        self._action("resume")

    def restart(self) -> None:
        """Restart a RUNNING job on the current members (IllegalJobStateError otherwise)."""
        self._action("restart")

    def export_snapshot(self, name: str) -> None:
        """Save the job's state as the named snapshot (replacing one of that name); the
        job goes on. Works on RUNNING and SUSPENDED jobs, whatever their guarantee."""
        check_path_name("snapshot", name)
        self._summary = self._requester.request(p.ExportSnapshot(self.id, name, False), EXPORT_TIMEOUT_S).job

    def cancel_and_export_snapshot(self, name: str) -> None:
        """Save the job's state as the named snapshot (a terminal one), then cancel the job."""
        check_path_name("snapshot", name)
        self._summary = self._requester.request(p.ExportSnapshot(self.id, name, True), EXPORT_TIMEOUT_S).job

    def _action(self, action: str) -> None:
        self._summary = self._requester.request(p.JobAction(self.id, action)).job

    def __repr__(self) -> str:
        return f"Job(id={self.id_string}, name={self.name!r})"
