"""Job records on disk: ``<data-dir>/jobs/<id>.json`` (rewritten atomically on every
change) and ``<id>.dag`` (written once). Its methods do file I/O: the master calls them
on its store I/O thread (and at start), never on its loop."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from jetmq.config import JOB_RESULT_TTL_MS, MAX_JOB_RESULTS, JobConfig
from jetmq.ids import id_from_string, id_to_string
from jetmq.job_status import JobStatus
from jetmq.master.jobs import JobRecord, now_ms
from jetmq.master.quarantine import Quarantine
from jetmq.storage.files import atomic_write

log = logging.getLogger(__name__)


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

    def create(self, job_id: int, dag: bytes, record: bytes) -> None:
        """Write a new job's DAG and record; OSError (and nothing left behind) if either fails."""
        json_path, dag_path = self._paths(job_id)
        try:
            atomic_write(dag_path, dag)
            self.write(job_id, record)
        except OSError:
            dag_path.unlink(missing_ok=True)
            raise

    def write(self, job_id: int, record: bytes) -> None:
        """Replace a job's record with ``record`` (see ``encode``)."""
        atomic_write(self._paths(job_id)[0], record)

    def save(self, job: JobRecord) -> None:
        self.write(job.job_id, encode(job))

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
                         next_snapshot_id=_field(d, "next_snapshot_id", int, 0), quorum=_field(d, "quorum", int, 0),
                         failures=[f for f in _field(d, "failures", list, []) if _is_failure(f)],
                         executions=[e for e in _field(d, "executions", list, []) if _is_execution(e)],
                         outline=_field(d, "outline", dict, None))

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


def encode(job: JobRecord, **changes) -> bytes:
    """The bytes of a job's record, with ``changes`` to its fields (made on the loop, written off it)."""
    return json.dumps({**job.to_json(), **changes}).encode()


def _is_failure(record) -> bool:
    return (isinstance(record, dict) and type(record.get("time")) is int and type(record.get("cause")) is str
            and type(record.get("then")) is str)


#: The fields of an entry of a record's execution history, and their types (records written
#: before the history existed have none: an empty history).
_EXECUTION_FIELDS = {"number": (int,), "execution_id": (int,), "start_time": (int,), "members": (list,),
                     "end_time": (int, type(None)), "ended": (str, type(None)), "reason": (str, type(None))}


def _is_execution(entry) -> bool:
    return (isinstance(entry, dict) and all(type(entry.get(k, ...)) in kinds for k, kinds in _EXECUTION_FIELDS.items())
            and all(type(uuid) is str for uuid in entry["members"]))
