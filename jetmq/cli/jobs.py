"""The job commands of `jet`: list-jobs, cancel, suspend, resume, restart (Jet's output;
``list-jobs --json`` is jetmq's).

``list-jobs`` sends one bare request (no JetClient: that would import serialization and
the DAG modules, see jetmq/cli/common.py); the others work through the JetClient.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from jetmq import protocol as p
from jetmq.cli.common import RET_OK, CommandError, Connection
from jetmq.errors import JobNotFoundError
from jetmq.formatting import JobRow, format_job, format_job_table, format_json, jobs_document
from jetmq.ids import id_to_string
from jetmq.job_status import JobStatus

if TYPE_CHECKING:
    from jetmq.job import Job

#: How long a command waits for the job to reach the status it asked for.
WAIT_TIMEOUT_S = 60.0
WAIT_POLL_S = 0.05


def resolve(conn: Connection, name_or_id: str) -> Job:
    try:
        return conn.client.get_job(name_or_id)
    except JobNotFoundError:
        raise CommandError(f"No job with name or id '{name_or_id}' was found") from None


def described(job: Job) -> str:
    return format_job(job.id_string, job.name, job.submission_time)


def wait_for(job: Job, target: JobStatus) -> None:
    deadline = time.monotonic() + WAIT_TIMEOUT_S
    while (status := job.status) is not target:
        if target is JobStatus.RUNNING and status is JobStatus.COMPLETED:
            return  # it ran, and was done before we looked (a short batch job)
        if status.is_terminal and not target.is_terminal:
            raise CommandError(f"Job '{job.id_string}' ended {status.name} instead of becoming {target.name}: "
                               f"{job.failure_text}")
        if time.monotonic() > deadline:
            raise CommandError(f"Job '{job.id_string}' is still {status.name} after {WAIT_TIMEOUT_S:.0f} s "
                               f"of waiting for it to be {target.name}")
        time.sleep(WAIT_POLL_S)


def cmd_list_jobs(conn: Connection, args: dict) -> int:
    # one request for all the jobs (what JetClient.get_jobs() asks), newest first, and among
    # jobs submitted in the same millisecond the active ones first
    rows = [JobRow(id_to_string(s.job_id), JobStatus[s.status], s.submission_time, s.name, s.completion_time,
                   s.failure_text)
            for s in conn.requester.request(p.GetJobs(None)).jobs]
    rows = [r for r in rows if args["--all"] or not r.status.is_terminal]
    rows.sort(key=lambda r: (-r.submission_time_ms, r.status.is_terminal))
    print("\n".join(format_json(jobs_document(rows)) if args["--json"] else format_job_table(rows)))
    return RET_OK


def cmd_cancel(conn: Connection, args: dict) -> int:
    name_or_id = args["<job>"]
    job = resolve(conn, name_or_id)
    status = job.status
    if status.is_terminal:
        raise CommandError(f"Job '{name_or_id}' is not active. Current state: {status.name}")
    print(f"Cancelling job {described(job)}")
    job.cancel()
    wait_for(job, JobStatus.FAILED)
    print("Job cancelled.")
    return RET_OK


def _change(conn: Connection, args: dict, *, required: JobStatus, adjective: str, verb: str, action,
            target: JobStatus, done: str) -> int:
    name_or_id = args["<job>"]
    job = resolve(conn, name_or_id)
    status = job.status
    if status is not required:
        raise CommandError(f"Job '{name_or_id}' is not {adjective}. Current state: {status.name}")
    print(f"{verb} job {described(job)}...")
    action(job)
    wait_for(job, target)
    print(done)
    return RET_OK


def cmd_suspend(conn: Connection, args: dict) -> int:
    return _change(conn, args, required=JobStatus.RUNNING, adjective="running", verb="Suspending",
                   action=lambda job: job.suspend(), target=JobStatus.SUSPENDED, done="Job suspended.")


def cmd_resume(conn: Connection, args: dict) -> int:
    return _change(conn, args, required=JobStatus.SUSPENDED, adjective="suspended", verb="Resuming",
                   action=lambda job: job.resume(), target=JobStatus.RUNNING, done="Job resumed.")


def cmd_restart(conn: Connection, args: dict) -> int:
    return _change(conn, args, required=JobStatus.RUNNING, adjective="running", verb="Restarting",
                   action=lambda job: job.restart(), target=JobStatus.RUNNING, done="Job restarted.")
