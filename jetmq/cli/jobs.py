"""The job commands of `jet`: list-jobs, cancel, suspend, resume, restart (Jet's output)."""
from __future__ import annotations

import time

from jetmq.cli.common import RET_OK, CommandError
from jetmq.client import JetClient
from jetmq.errors import JobNotFoundError
from jetmq.formatting import JobRow, format_job, format_job_table
from jetmq.job import Job
from jetmq.job_status import JobStatus

#: How long a command waits for the job to reach the status it asked for.
WAIT_TIMEOUT_S = 60.0
WAIT_POLL_S = 0.05


def resolve(client: JetClient, name_or_id: str) -> Job:
    try:
        return client.get_job(name_or_id)
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


def cmd_list_jobs(client: JetClient, args: dict) -> int:
    # one request for all the jobs: their statuses as get_jobs() fetched them
    jobs = [j for j in client.get_jobs() if args["--all"] or not j.last_known_status.is_terminal]
    jobs.sort(key=lambda j: j.submission_time, reverse=True)
    rows = [JobRow(j.id_string, j.last_known_status, j.submission_time, j.name) for j in jobs]
    print("\n".join(format_job_table(rows)))
    return RET_OK


def cmd_cancel(client: JetClient, args: dict) -> int:
    name_or_id = args["<job>"]
    job = resolve(client, name_or_id)
    status = job.status
    if status.is_terminal:
        raise CommandError(f"Job '{name_or_id}' is not active. Current state: {status.name}")
    print(f"Cancelling job {described(job)}")
    job.cancel()
    wait_for(job, JobStatus.FAILED)
    print("Job cancelled.")
    return RET_OK


def _change(client: JetClient, args: dict, *, required: JobStatus, adjective: str, verb: str, action,
            target: JobStatus, done: str) -> int:
    name_or_id = args["<job>"]
    job = resolve(client, name_or_id)
    status = job.status
    if status is not required:
        raise CommandError(f"Job '{name_or_id}' is not {adjective}. Current state: {status.name}")
    print(f"{verb} job {described(job)}...")
    action(job)
    wait_for(job, target)
    print(done)
    return RET_OK


def cmd_suspend(client: JetClient, args: dict) -> int:
    return _change(client, args, required=JobStatus.RUNNING, adjective="running", verb="Suspending",
                   action=Job.suspend, target=JobStatus.SUSPENDED, done="Job suspended.")


def cmd_resume(client: JetClient, args: dict) -> int:
    return _change(client, args, required=JobStatus.SUSPENDED, adjective="suspended", verb="Resuming",
                   action=Job.resume, target=JobStatus.RUNNING, done="Job resumed.")


def cmd_restart(client: JetClient, args: dict) -> int:
    return _change(client, args, required=JobStatus.RUNNING, adjective="running", verb="Restarting",
                   action=Job.restart, target=JobStatus.RUNNING, done="Job restarted.")
