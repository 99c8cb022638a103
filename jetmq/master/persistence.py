"""Job records written off the master's loop, in order, and saved again when a write fails.

The coordinator changes a job's record in memory and asks for it to be saved; the
record's bytes are made at once, on the loop, and written on the store I/O thread, in
the order asked. A write that fails (a full disk) leaves the job as it is in memory,
logged once, and is tried again with the job's latest record on a later tick. While
a snapshot's commit is writing a job's record, other saves of that job wait for it,
so no older record can overwrite the one that names the new snapshot.
"""
from __future__ import annotations

import logging
from typing import Callable

from jetmq.master.jobs import JobRecord
from jetmq.master.repository import JobRepository, encode

log = logging.getLogger(__name__)

#: A record that could not be written is tried again this often.
RETRY_INTERVAL_S = 1.0


class RecordWriter:
    def __init__(self, repository: JobRepository, io):
        self.repository = repository
        self._io = io
        self._failed: set[int] = set()  # jobs whose last write failed
        self._held: dict[int, JobRecord | None] = {}  # jobs whose saves wait for a commit -> latest wanted
        self._next_retry = 0.0

    def save(self, job: JobRecord) -> None:
        """Write the job's record as it is now (later, if its saves are held)."""
        if job.job_id in self._held:
            self._held[job.job_id] = job
            return
        data, job_id = encode(job), job.job_id
        self._io.submit(f"saving the record of job {job.id_string}", lambda: self.repository.write(job_id, data),
                        lambda _result, error: self._written(job, error))

    def _written(self, job: JobRecord, error: BaseException | None) -> None:
        if error is None:
            if job.job_id in self._failed:
                self._failed.discard(job.job_id)
                log.warning("job %s: its record is saved again", job.id_string)
            return
        if job.job_id not in self._failed:
            log.error("job %s: cannot save its record (%s); it is kept in memory and saved again as soon as "
                      "the disk allows", job.id_string, getattr(error, "strerror", None) or error)
        self._failed.add(job.job_id)

    def hold(self, job: JobRecord) -> None:
        """Saves of this job wait (a commit is writing its record)."""
        self._held.setdefault(job.job_id, None)

    def release(self, job: JobRecord) -> None:
        """The commit is done: a save asked for meanwhile goes out now."""
        if self._held.pop(job.job_id, None) is not None:
            self.save(job)

    def create(self, job: JobRecord, done: Callable[[BaseException | None], None]) -> None:
        """Write a new job's DAG and record; ``done(error or None)`` on the loop."""
        data, job_id, dag = encode(job), job.job_id, job.dag
        self._io.submit(f"recording job {job.id_string}", lambda: self.repository.create(job_id, dag, data),
                        lambda _result, error: done(error))

    def delete(self, job: JobRecord) -> None:
        job_id = job.job_id
        self._io.submit(f"deleting the record of job {job.id_string}", lambda: self.repository.delete(job_id))

    def retry(self, jobs: dict[int, JobRecord], now: float) -> None:
        """Now and then, save again the records whose last write failed."""
        if not self._failed or now < self._next_retry:
            return
        self._next_retry = now + RETRY_INTERVAL_S
        for job_id in list(self._failed):
            job = jobs.get(job_id)
            if job is None:
                self._failed.discard(job_id)
            else:
                self.save(job)
