"""Job records and executions, as the master keeps them."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from jetmq import protocol as p
from jetmq.config import JobConfig
from jetmq.ids import id_to_string
from jetmq.job_status import JobStatus, check_transition

log = logging.getLogger(__name__)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class ExecutionRecord:
    """One attempt to run a job on a fixed list of members."""

    execution_id: int
    member_uuids: tuple[str, ...]
    initialized: set[str] = field(default_factory=set)
    finished: set[str] = field(default_factory=set)


@dataclass
class JobRecord:
    """A job: its config, its (opaque) DAG, its status and its current execution."""

    job_id: int
    config: JobConfig
    dag: bytes
    submission_time: int
    status: JobStatus = JobStatus.NOT_RUNNING
    failure_text: str | None = None
    completion_time: int | None = None
    execution: ExecutionRecord | None = None

    @property
    def name(self) -> str | None:
        return self.config.name

    @property
    def id_string(self) -> str:
        return id_to_string(self.job_id)

    def transition(self, new: JobStatus, why: str) -> None:
        """The only way a job's status changes: checked against the transition table, and logged."""
        check_transition(self.status, new)
        log.info("job %s (%s): %s -> %s: %s", self.id_string, self.name, self.status.name, new.name, why)
        self.status = new
        if new.is_terminal:
            self.completion_time = now_ms()

    def summary(self) -> p.JobSummary:
        return p.JobSummary(self.job_id, self.name, self.status.name, self.submission_time, self.completion_time,
                            self.failure_text)
