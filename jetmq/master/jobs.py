"""Job records and executions as the master keeps them in memory (on disk: repository.py)."""
from __future__ import annotations

import enum
import logging
import re
import time
from dataclasses import dataclass, field

from jetmq import protocol as p
from jetmq.config import JobConfig
from jetmq.ids import id_to_string
from jetmq.job_status import JobStatus, check_transition

log = logging.getLogger(__name__)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class AfterTermination(enum.Enum):
    """What becomes of a job once its execution has stopped."""

    RESTART = "a new execution starts"
    SUSPEND = "the job is SUSPENDED"
    CANCEL = "the job is FAILED with CancellationException"


class TerminationMode(enum.Enum):
    """Why an execution is being stopped, in Jet's terms: what follows, and whether a
    terminal snapshot is taken first (graceful; only with a processing guarantee)."""

    RESTART_GRACEFUL = (AfterTermination.RESTART, True)
    RESTART_FORCEFUL = (AfterTermination.RESTART, False)
    SUSPEND_GRACEFUL = (AfterTermination.SUSPEND, True)
    SUSPEND_FORCEFUL = (AfterTermination.SUSPEND, False)
    CANCEL_GRACEFUL = (AfterTermination.CANCEL, True)
    CANCEL_FORCEFUL = (AfterTermination.CANCEL, False)

    def __init__(self, then: AfterTermination, graceful: bool):
        self.then = then
        self.graceful = graceful


class TerminationStage(enum.Enum):
    """How far a termination has got."""

    AWAITING_SNAPSHOT = "a terminal snapshot is wanted: it starts when the snapshot under way ends"
    SNAPSHOTTING = "the terminal snapshot is being taken"
    STOPPING = "the members were told to stop the execution"


@dataclass
class Termination:
    """A termination under way: its mode, its stage, and why it was asked for (what the
    execution history says of the execution it ends)."""

    mode: TerminationMode
    stage: TerminationStage
    reason: str = ""

    def __str__(self) -> str:
        return self.mode.name


#: Executions a job record keeps in its history (the newest).
EXECUTIONS_KEPT = 20


class ExecutionEnd(enum.Enum):
    """How an execution ended, as the job's history says."""

    COMPLETED = "every member completed: the job is COMPLETED"
    FAILED = "the job failed"
    CANCELLED = "the job was cancelled"
    SUSPENDED = "the job was suspended"
    RESTARTED = "a new execution was started (or waits to start)"
    INTERRUPTED = "the master stopped while it ran (a new master restarted the job)"


@dataclass(frozen=True)
class FailureReason:
    """A failure text taken apart: ``Exception in <where>: <exception>: <message>`` (a processor
    raised, docs/jet-compatibility.md §3), ``<Name>Exception[: <message>]`` (CancellationException,
    TopologyChangedException), or any other text (exception None, the text as the message)."""

    exception: str | None
    message: str
    where: str | None = None


_PROCESSOR_FAILURE = re.compile(r"Exception in (?P<where>.*?): (?P<exception>[A-Za-z_]\w*): (?P<message>.*)",
                                re.DOTALL)
_NAMED_FAILURE = re.compile(r"(?P<exception>[A-Z]\w*(?:Exception|Error))(?:: (?P<message>.*))?", re.DOTALL)


def parse_failure(text: str) -> FailureReason:
    """The exception type, message and place a job's failure text names (see FailureReason)."""
    for pattern in (_PROCESSOR_FAILURE, _NAMED_FAILURE):
        match = pattern.fullmatch(text)
        if match is not None:
            found = match.groupdict()
            return FailureReason(found["exception"], found.get("message") or "", found.get("where"))
    return FailureReason(None, text)


@dataclass
class ExecutionRecord:
    """One attempt to run a job on a fixed list of members."""

    execution_id: int
    member_uuids: tuple[str, ...]
    initialized: set[str] = field(default_factory=set)
    stopped: set[str] = field(default_factory=set)  # members whose part has ended, however
    succeeded: set[str] = field(default_factory=set)  # ... and of those, the ones that completed
    #: member index -> the file (relative to the snapshot store) of the exactly-once output a
    #: completed member had not yet seen covered by a committed snapshot
    final_outputs: dict[int, p.FileRef] = field(default_factory=dict)
    publishing: bool = False  # every member completed: the output is being published
    #: every member completed while a snapshot was being committed: its output is published
    #: once the commit is over (until then, what that snapshot covers is not known)
    complete_after_commit: bool = False
    start_time: int = field(default_factory=lambda: now_ms())  # epoch ms

    @property
    def all_stopped(self) -> bool:
        return self.stopped >= set(self.member_uuids)


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
    termination: Termination | None = None  # the termination under way, if any
    executions_started: int = 0
    last_snapshot_id: int = -1  # the last committed snapshot (saved in the record)
    next_snapshot_id: int = 0  # (saved in the record)
    snapshot: object = None  # the SnapshotAttempt in progress
    snapshot_due: float = 0.0  # monotonic time the next regular snapshot is due
    quorum: int = 0  # members needed to run, with split-brain protection (saved in the record)
    pending_exports: list = field(default_factory=list)  # exports waiting for the next snapshot
    restart_at: float = 0.0  # monotonic time a job waiting for an execution may start one
    restart_after_loss: float = 0.0  # when the wave of member losses it restarts after began
    failures: list = field(default_factory=list)  # {time, cause, then} of its own code's failures (saved)
    #: the last EXECUTIONS_KEPT executions, oldest first (saved): see ``execution_started``
    executions: list = field(default_factory=list)
    #: member uuid -> its latest metrics report of the current (or last) execution, opaque bytes
    #: (see master/coordinator.py, "Metrics"); not saved
    metrics: dict = field(default_factory=dict)
    outline: dict | None = None  # the DAG's shape as the client described it (DAG.outline()); saved

    @property
    def uses_snapshots(self) -> bool:
        return self.config.processing_guarantee.name != "NONE"

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

    @property
    def failure_reason(self) -> FailureReason | None:
        """The failure text taken apart (exception type and message), if the job has one."""
        return None if self.failure_text is None else parse_failure(self.failure_text)

    def execution_started(self, execution: ExecutionRecord) -> None:
        """Add an execution to the job's history (numbered from 1 over the job's life)."""
        number = self.executions[-1]["number"] + 1 if self.executions else 1
        self.executions = (self.executions + [{
            "number": number, "execution_id": execution.execution_id, "start_time": execution.start_time,
            "members": list(execution.member_uuids), "end_time": None, "ended": None, "reason": None,
        }])[-EXECUTIONS_KEPT:]

    def execution_ended(self, ended: ExecutionEnd, reason: str, execution_id: int | None = None,
                        at: int | None = None) -> None:
        """Say in the history how the current execution (or ``execution_id``) ended, and why."""
        execution_id = execution_id if execution_id is not None else \
            (self.execution.execution_id if self.execution is not None else None)
        for entry in reversed(self.executions):
            if entry["execution_id"] == execution_id and entry["ended"] is None:
                entry.update(end_time=now_ms() if at is None else at, ended=ended.name, reason=reason)
                return

    def interrupted(self, ended: ExecutionEnd, reason: str) -> None:
        """The master that ran the job stopped (a new one loads it): the executions it had not
        seen end are over, when is not known."""
        for entry in self.executions:
            if entry["ended"] is None:
                entry.update(ended=ended.name, reason=reason)

    def summary(self) -> p.JobSummary:
        return p.JobSummary(self.job_id, self.name, self.status.name, self.submission_time, self.completion_time,
                            self.failure_text, self.executions_started,
                            self.execution.member_uuids if self.execution else (), self.last_snapshot_id,
                            self.snapshot.snapshot_id if self.snapshot is not None else -1,
                            tuple(p.FailureInfo(f["time"], f["cause"], f["then"]) for f in self.failures))

    def to_json(self) -> dict:
        return {"job_id": self.job_id, "config": self.config.to_dict(), "submission_time": self.submission_time,
                "status": self.status.name, "failure_text": self.failure_text,
                "completion_time": self.completion_time, "last_snapshot_id": self.last_snapshot_id,
                "next_snapshot_id": self.next_snapshot_id, "quorum": self.quorum, "failures": self.failures,
                "executions": self.executions, "outline": self.outline}

