"""Job records and executions as the master keeps them, and their files in the data dir."""
from __future__ import annotations

import enum
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from jetmq import protocol as p
from jetmq.config import JOB_RESULT_TTL_MS, MAX_JOB_RESULTS, JobConfig
from jetmq.ids import id_from_string, id_to_string
from jetmq.job_status import JobStatus, check_transition
from jetmq.master.datadir import atomic_write
from jetmq.master.quarantine import Quarantine

log = logging.getLogger(__name__)



def now_ms() -> int:
    return time.time_ns() // 1_000_000


class TerminationMode(enum.Enum):
    """Why an execution is being stopped, in Jet's terms."""

    RESTART_GRACEFUL = "RESTART_GRACEFUL"
    RESTART_FORCEFUL = "RESTART_FORCEFUL"
    SUSPEND_GRACEFUL = "SUSPEND_GRACEFUL"
    SUSPEND_FORCEFUL = "SUSPEND_FORCEFUL"
    CANCEL_GRACEFUL = "CANCEL_GRACEFUL"
    CANCEL_FORCEFUL = "CANCEL_FORCEFUL"

    @property
    def action(self) -> str:
        return self.name.split("_")[0].lower()


@dataclass
class ExecutionRecord:
    """One attempt to run a job on a fixed list of members."""

    execution_id: int
    member_uuids: tuple[str, ...]
    initialized: set[str] = field(default_factory=set)
    stopped: set[str] = field(default_factory=set)  # members whose part has ended, however
    succeeded: set[str] = field(default_factory=set)  # ... and of those, the ones that completed

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
    terminating: TerminationMode | None = None  # the termination under way, if any
    executions_started: int = 0
    last_snapshot_id: int = -1  # the last committed snapshot (saved in the record)
    next_snapshot_id: int = 0  # (saved in the record)
    snapshot: object = None  # the SnapshotAttempt in progress
    snapshot_due: float = 0.0  # monotonic time the next regular snapshot is due
    terminal_snapshot_wanted: bool = False
    quorum: int = 0  # members needed to run, with split-brain protection (saved in the record)
    pending_exports: list = field(default_factory=list)  # exports waiting for the next snapshot
    staged: list = field(default_factory=list)  # the execution's (epoch, kind, name, data) not yet applied

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

    def summary(self) -> p.JobSummary:
        return p.JobSummary(self.job_id, self.name, self.status.name, self.submission_time, self.completion_time,
                            self.failure_text, self.executions_started,
                            self.execution.member_uuids if self.execution else (), self.last_snapshot_id,
                            self.snapshot.snapshot_id if self.snapshot is not None else -1)

    def to_json(self) -> dict:
        return {"job_id": self.job_id, "config": self.config.to_dict(), "submission_time": self.submission_time,
                "status": self.status.name, "failure_text": self.failure_text,
                "completion_time": self.completion_time, "last_snapshot_id": self.last_snapshot_id,
                "next_snapshot_id": self.next_snapshot_id, "quorum": self.quorum}


class JobRepository:
    """Job records under ``<data-dir>/jobs``: ``<id>.json`` (rewritten atomically on
    every change) and ``<id>.dag`` (written once)."""

    def __init__(self, root: Path, result_ttl_ms: int = JOB_RESULT_TTL_MS, max_results: int = MAX_JOB_RESULTS,
                 quarantine: Quarantine | None = None):
        self.root = Path(root)
        self.quarantine = quarantine or Quarantine(self.root.parent / "quarantine")
        self.result_ttl_ms = result_ttl_ms
        self.max_results = max_results

    def _paths(self, job_id: int) -> tuple[Path, Path]:
        stem = self.root / id_to_string(job_id)
        return stem.with_suffix(".json"), stem.with_suffix(".dag")

    def create(self, job: JobRecord) -> None:
        """Write a new job's DAG and record; OSError (and nothing left behind) if either fails."""
        json_path, dag_path = self._paths(job.job_id)
        try:
            atomic_write(dag_path, job.dag)
            self.save(job)
        except OSError:
            dag_path.unlink(missing_ok=True)
            raise

    def save(self, job: JobRecord) -> None:
        atomic_write(self._paths(job.job_id)[0], json.dumps(job.to_json()).encode())

    def delete(self, job_id: int) -> None:
        for path in self._paths(job_id):
            path.unlink(missing_ok=True)

    def load_all(self) -> list[JobRecord]:
        """Every job record. One that cannot be read is moved to the quarantine and comes
        back as a FAILED job whose failure says why (when its file name tells its id)."""
        jobs = []
        for json_path in sorted(self.root.glob("*.json")) if self.root.exists() else []:
            try:
                jobs.append(self._read(json_path))
            except Exception as e:  # whatever is wrong with it, the master starts
                failed = self._quarantined(json_path, f"{type(e).__name__}: {e}")
                if failed is not None:
                    jobs.append(failed)
        return jobs

    def _read(self, json_path: Path) -> JobRecord:
        d = json.loads(json_path.read_bytes())
        if not isinstance(d, dict):
            raise ValueError("the record is not a JSON object")
        job_id = _field(d, "job_id", int)
        if id_to_string(job_id) != json_path.stem:
            raise ValueError(f"the record's id {job_id} is not the one its file name says")
        status = JobStatus[_field(d, "status", str)]
        dag_path = json_path.with_suffix(".dag")
        dag = dag_path.read_bytes() if not status.is_terminal or dag_path.exists() else b""
        return JobRecord(job_id, JobConfig.from_dict(_field(d, "config", dict)), dag,
                         _field(d, "submission_time", int), status, _field(d, "failure_text", str, None),
                         _field(d, "completion_time", int, None),
                         last_snapshot_id=_field(d, "last_snapshot_id", int, -1),
                         next_snapshot_id=_field(d, "next_snapshot_id", int, 0), quorum=_field(d, "quorum", int, 0))

    def _quarantined(self, json_path: Path, reason: str) -> JobRecord | None:
        """Move a bad record (and its DAG) aside; the FAILED job that stands for it."""
        job_id = id_from_string(json_path.stem)
        name, submission_time = _salvage(json_path)
        moved = self.quarantine.move(json_path, f"unreadable job record: {reason}")
        dag_path = json_path.with_suffix(".dag")
        if moved is not None and dag_path.exists():
            self.quarantine.move(dag_path, f"the DAG of an unreadable job record: {reason}")
        if job_id is None:
            return None  # not a job's record at all
        kept = f"moved to {moved}" if moved is not None else f"left at {json_path}"
        job = JobRecord(job_id, JobConfig(name=name), b"", submission_time, JobStatus.FAILED,
                        failure_text=f"the job's record could not be read ({reason}); it was {kept}",
                        completion_time=now_ms())
        if moved is not None:
            try:
                self.save(job)
            except OSError as e:
                log.error("job %s: cannot save the record of its failure: %s", job.id_string, e)
        return job

    def expired(self, jobs: list[JobRecord], now: int) -> list[JobRecord]:
        """Finished jobs past the result TTL, or beyond the newest ``max_results``."""
        finished = sorted((j for j in jobs if j.status.is_terminal), key=lambda j: j.completion_time or 0,
                          reverse=True)
        old = [j for j in finished if now - (j.completion_time or 0) > self.result_ttl_ms]
        return old + [j for j in finished[self.max_results:] if j not in old]


_REQUIRED = object()


def _field(record: dict, key: str, kind: type, default=_REQUIRED):
    """``record[key]``, which must be of ``kind`` (or None, when None is the default)."""
    if key not in record:
        if default is _REQUIRED:
            raise KeyError(f"the record has no '{key}'")
        return default
    value = record[key]
    if value is None and default is None:
        return None
    if type(value) is not kind:
        raise TypeError(f"the record's '{key}' is {type(value).__name__}, not {kind.__name__}")
    return value


def _salvage(json_path: Path) -> tuple[str | None, int]:
    """What can still be read of a damaged record: the job's name and submission time."""
    name, submitted = None, None
    try:
        d = json.loads(json_path.read_bytes())
        candidate = d["config"]["name"]
        name = JobConfig(name=candidate).name
        submitted = d["submission_time"] if type(d["submission_time"]) is int else None
    except Exception:
        pass
    if submitted is None:
        try:
            submitted = int(json_path.stat().st_mtime * 1000)
        except OSError:
            submitted = now_ms()
    return name, submitted
