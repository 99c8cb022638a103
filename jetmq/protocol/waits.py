"""Messages a client sends to be told of a change when it happens (a long poll on its
connection): the master holds the request and answers it as soon as the change is
there, or after ``timeout_ms`` with things as they are."""
from __future__ import annotations

from jetmq.protocol.codec import message


@message
class WaitJob:
    """Answer (JobReply) once the job's status is other than ``known_status``, or after
    ``timeout_ms``; at once if it already is."""

    job_id: int
    known_status: str
    timeout_ms: int


@message
class WaitObservable:
    """GetObservable that, when nothing at or after ``from_seq`` is there yet and the
    observable has not ended, is answered (ObservableItems) when something comes, or
    after ``timeout_ms`` with nothing."""

    name: str
    from_seq: int
    max_items: int
    timeout_ms: int


__all__ = ["WaitJob", "WaitObservable"]
