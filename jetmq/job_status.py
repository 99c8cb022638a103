"""JobStatus, Jet's job state machine, with the transitions the master may make."""
from __future__ import annotations

import enum


class JobStatus(enum.Enum):
    """The status of a job, in Jet's order."""

    NOT_RUNNING = "NOT_RUNNING"
    """Submitted (or about to restart) and waiting for an execution to start."""
    STARTING = "STARTING"
    """An execution was planned and sent to the members, which are initialising it."""
    RUNNING = "RUNNING"
    """Every member runs the execution."""
    SUSPENDED = "SUSPENDED"
    """Stopped, with its state kept in a snapshot; resume starts it again."""
    SUSPENDED_EXPORTING_SNAPSHOT = "SUSPENDED_EXPORTING_SNAPSHOT"
    """Suspended, and copying its last snapshot to a named one."""
    COMPLETING = "COMPLETING"
    """An execution is being terminated (cancel, suspend, restart), or is finishing."""
    FAILED = "FAILED"
    """Ended with an error, or cancelled. Final."""
    COMPLETED = "COMPLETED"
    """Ended successfully (only batch jobs do). Final."""

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.FAILED, JobStatus.COMPLETED)

    @property
    def is_active(self) -> bool:
        """Not finished: a job of this name blocks another of the same name."""
        return not self.is_terminal


#: The failure text of a cancelled job, as Jet's.
CANCELLATION_FAILURE = "CancellationException"

S = JobStatus

#: Every status change the master may make; anything else is a bug, refused loudly.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    S.NOT_RUNNING: frozenset({S.STARTING, S.FAILED, S.SUSPENDED}),
    S.STARTING: frozenset({S.RUNNING, S.COMPLETING, S.NOT_RUNNING, S.FAILED, S.COMPLETED, S.SUSPENDED}),
    S.RUNNING: frozenset({S.COMPLETING, S.NOT_RUNNING, S.FAILED, S.COMPLETED, S.SUSPENDED}),
    S.COMPLETING: frozenset({S.SUSPENDED, S.STARTING, S.NOT_RUNNING, S.FAILED, S.COMPLETED}),
    S.SUSPENDED: frozenset({S.NOT_RUNNING, S.SUSPENDED_EXPORTING_SNAPSHOT, S.FAILED}),
    S.SUSPENDED_EXPORTING_SNAPSHOT: frozenset({S.SUSPENDED, S.FAILED}),
    S.FAILED: frozenset(),
    S.COMPLETED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A status change outside TRANSITIONS: a bug in the coordinator."""


def check_transition(current: JobStatus, new: JobStatus) -> None:
    if new not in TRANSITIONS[current]:
        raise IllegalTransition(f"job status cannot change from {current.name} to {new.name}")
