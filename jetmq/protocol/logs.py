"""Messages of per-job logs: members push their job log lines to the master, which keeps
the latest of each job in a bounded buffer; `jet logs` reads them (docs/operations.md, "Logs")."""
from __future__ import annotations

from jetmq.protocol.codec import message, nested


@nested
class JobLogLine:
    """One line a member logged about a job, or that user code printed or logged while a
    processor of the job ran: ``text`` is "LEVEL logger: message" (a traceback may follow)."""

    job_id: int
    time: int  # epoch ms, on the member's clock
    text: str


@message
class JobLogLines:
    """A member's job log lines since its last push (member -> master)."""

    lines: tuple[JobLogLine, ...]


@message
class GetJobLogs:
    """A job's log lines the master keeps: those after sequence number ``after_seq`` (-1:
    from the oldest kept), of one member only when ``member`` (a uuid or a unique prefix of
    one) is given, the last ``tail`` of them when ``tail`` >= 0."""

    job_id: int
    member: str | None
    after_seq: int
    tail: int


@nested
class KeptLogLine:
    seq: int  # the master's sequence number of the line (for -f: ask for those after it)
    time: int  # epoch ms, on the member's clock
    member: str  # the member's uuid
    text: str


@message
class JobLogsReply:
    """Lines in time order; ``more``: the reply was full, ask again after ``last_seq``;
    ``evicted``: older lines of the job the master no longer keeps; ``status``: the job's."""

    lines: tuple[KeptLogLine, ...]
    last_seq: int
    more: bool
    evicted: int
    status: str
    member: str | None  # the uuid ``member`` resolved to


__all__ = [name for name, value in list(globals().items()) if isinstance(value, type) and value.__module__ == __name__]
