"""The job log lines members push (member/joblogs.py), kept for `jet logs` in bounded memory.

The master keeps the latest lines of each job it knows: at most MAX_LINES_PER_JOB lines
and MAX_BYTES_PER_JOB characters a job, MAX_TOTAL_BYTES over all jobs (the job whose
last line is the oldest loses its lines first). A member that dies or leaves loses
nothing that it had pushed. Older lines are counted as evicted, so a reader learns
that there were more (each member keeps every line of a job in its own file). The work
per message is a few appends; a reply holds at most MAX_REPLY_LINES lines (a --tail
reply: the lines asked for, at most the job's kept ones).
"""
from __future__ import annotations

import itertools
import logging
from collections import deque
from dataclasses import dataclass, field

from jetmq import protocol as p
from jetmq.errors import JobNotFoundError, MemberNotFoundError
from jetmq.ids import id_to_string
from jetmq.transport import Incoming

log = logging.getLogger(__name__)

MAX_LINES_PER_JOB = 10_000
MAX_BYTES_PER_JOB = 4 * 1024 * 1024
MAX_TOTAL_BYTES = 64 * 1024 * 1024
MAX_REPLY_LINES = 2_000
#: A line's overhead besides its text, counted in the budgets above.
LINE_OVERHEAD = 100
_HEX = frozenset("0123456789abcdef-")


@dataclass
class JobLines:
    lines: deque = field(default_factory=deque)  # KeptLogLine, in arrival order (seq ascending)
    size: int = 0
    evicted: int = 0
    last_seq: int = -1


def _size(line: p.KeptLogLine) -> int:
    return len(line.text) + LINE_OVERHEAD


class JobLogStore:
    """The kept lines of every job; nothing here looks at jobs or members."""

    def __init__(self, max_lines: int = MAX_LINES_PER_JOB, max_bytes: int = MAX_BYTES_PER_JOB,
                 max_total: int = MAX_TOTAL_BYTES):
        self._jobs: dict[int, JobLines] = {}  # insertion order = least recently appended first
        self._seq = itertools.count()
        self._max_lines, self._max_bytes, self._max_total = max_lines, max_bytes, max_total
        self.total = 0

    def add(self, member: str, lines) -> None:
        for line in lines:
            job = self._jobs.pop(line.job_id, None) or JobLines()
            self._jobs[line.job_id] = job  # now the most recently appended
            kept = p.KeptLogLine(next(self._seq), line.time, member, line.text)
            job.lines.append(kept)
            job.last_seq = kept.seq
            job.size += _size(kept)
            self.total += _size(kept)
            while len(job.lines) > self._max_lines or job.size > self._max_bytes:
                self._evict_oldest(job)
        for job in list(self._jobs.values()) if self.total > self._max_total else ():
            while job.lines and self.total > self._max_total:
                self._evict_oldest(job)  # the jobs whose last lines are the oldest first

    def _evict_oldest(self, job: JobLines) -> None:
        line = job.lines.popleft()
        job.size -= _size(line)
        self.total -= _size(line)
        job.evicted += 1

    def members(self, job_id: int) -> set[str]:
        job = self._jobs.get(job_id)
        return {line.member for line in job.lines} if job else set()

    def read(self, job_id: int, member: str | None, after_seq: int, tail: int,
             limit: int = MAX_REPLY_LINES) -> tuple[list[p.KeptLogLine], int, bool, int]:
        """(lines in time order, the last seq the reader has seen, more to read, evicted)."""
        job = self._jobs.get(job_id)
        if job is None:
            return [], after_seq, False, 0
        chosen = [line for line in job.lines if line.seq > after_seq and (member is None or line.member == member)]
        if tail >= 0:  # at most the job's kept lines: MAX_BYTES_PER_JOB bound the reply
            chosen = sorted(chosen, key=lambda line: (line.time, line.seq))[-tail:] if tail else []
            return chosen, max(after_seq, job.last_seq), False, job.evicted
        more = len(chosen) > limit
        if more:
            chosen = chosen[:limit]
            last = chosen[-1].seq
        else:
            last = max(after_seq, job.last_seq)
        return sorted(chosen, key=lambda line: (line.time, line.seq)), last, more, job.evicted


class JobLogs:
    """The master's side of `jet logs`: members' pushes in, clients' reads out."""

    def __init__(self, coordinator, membership, reply):
        self._jobs = coordinator
        self._membership = membership
        self._reply = reply
        self.store = JobLogStore()

    def handlers(self) -> dict:
        return {p.GetJobLogs: self._on_get}

    def member_handlers(self) -> dict:
        return {p.JobLogLines: self._on_lines}

    def _on_lines(self, member_uuid: str, msg: p.JobLogLines) -> None:
        jobs = {job_id: self._known(job_id) for job_id in {line.job_id for line in msg.lines}}
        known = [line for line in msg.lines if jobs[line.job_id]]
        if known:
            self.store.add(member_uuid, known)

    def _known(self, job_id: int) -> bool:
        try:
            self._jobs.job(job_id)
        except JobNotFoundError:
            return False
        return True

    def _on_get(self, incoming: Incoming) -> None:
        msg: p.GetJobLogs = incoming.msg
        job = self._jobs.job(msg.job_id)  # JobNotFoundError: the client's ERROR
        member = None if msg.member is None else self._member(msg.job_id, msg.member)
        lines, last, more, evicted = self.store.read(msg.job_id, member, msg.after_seq, msg.tail)
        self._reply(incoming, p.JobLogsReply(tuple(lines), last, more, evicted, job.summary().status, member))

    def _member(self, job_id: int, prefix: str) -> str:
        """The uuid that ``prefix`` starts: a member's of the cluster or one that logged lines of the job."""
        prefix = prefix.strip().lower()
        if not prefix or not set(prefix) <= _HEX:
            raise MemberNotFoundError(f"'{prefix}' is not a member uuid (nor a prefix of one)")
        candidates = {info.uuid for info in self._membership.infos()} | self.store.members(job_id)
        matches = sorted(uuid for uuid in candidates if uuid.startswith(prefix))
        if not matches:
            raise MemberNotFoundError(f"No member with uuid '{prefix}' in the cluster or in the logs of job "
                                      f"{id_to_string(job_id)}")
        if len(matches) > 1:
            raise MemberNotFoundError(f"'{prefix}' is the start of several members' uuids: {', '.join(matches)}")
        return matches[0]
