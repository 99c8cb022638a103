"""`jet logs <job>`: a job's log lines from every member, in time order, tagged with the job and the member.

A reading command: bare requests through the requester (no JetClient, no serialization).
The master keeps the latest lines of each job, which the members push to it (see
jetmq/master/job_logs.py); ``-f`` asks again every POLL_S for the lines after the last one
shown, until the job has ended (or Ctrl-C). The format is in docs/operations.md, "Logs".
"""
from __future__ import annotations

import os
import sys
import time

from jetmq import protocol as p
from jetmq.cli.common import RET_OK, CommandError, Connection
from jetmq.cli.describe import resolve_id
from jetmq.errors import JobNotFoundError
from jetmq.ids import id_to_string
from jetmq.job_status import JobStatus

#: How often `jet logs -f` asks the master for new lines.
POLL_S = 0.3


def cmd_logs(conn: Connection, args: dict) -> int:
    name_or_id = args["<job>"]
    tail = parse_tail(args["--tail"])
    job_id = resolve_id(conn.requester, name_or_id)
    follow = args["--follow"]
    try:
        reply = conn.requester.request(p.GetJobLogs(job_id, args["--member"], -1, -1 if tail is None else tail))
        if reply.evicted and tail is None:
            print(f"({reply.evicted} earlier lines of this job are no longer kept by the master; every member keeps "
                  f"all of its lines in jobs/{id_to_string(job_id)}/ beside its log)", file=sys.stderr)
        while True:
            show(job_id, reply.lines)
            if not reply.more and (not follow or JobStatus[reply.status].is_terminal):
                return RET_OK
            if not reply.more:
                time.sleep(POLL_S)  # -f: the next lines come with the members' next pushes
            reply = conn.requester.request(p.GetJobLogs(job_id, reply.member, reply.last_seq, -1))
    except JobNotFoundError:  # no job of that id (or it went since it was listed)
        raise CommandError(f"No job with name or id '{name_or_id}' was found") from None
    except KeyboardInterrupt:
        return RET_OK
    except BrokenPipeError:  # e.g. `jet logs job | head`: nothing more to show, and no error at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return RET_OK


def parse_tail(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        tail = int(text)
    except ValueError:
        tail = -1
    if tail < 0:
        raise CommandError(f"--tail takes a number of lines (0 or more), not '{text}'")
    return tail


def show(job_id: int, lines) -> None:
    if lines:
        job = id_to_string(job_id)
        sys.stdout.write("".join(f"{format_time(line.time)} job={job} member={line.member[:8]} {line.text}\n"
                                 for line in lines))
        sys.stdout.flush()


def format_time(epoch_ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(epoch_ms / 1000)) + f".{epoch_ms % 1000:03d}"
