"""`jet describe <job>`: everything the master knows of one job, as text or (``--json``) a JSON document.

A reading command: bare requests through the requester (no JetClient, no serialization).
The job's metrics reports come as the master holds them and are decoded only when there
are some (that loads lz4 and jetmq.core's metrics modules, nothing of the engine's
running parts). The document is built in jetmq/web/documents.py, which the dashboard's
HTTP API serves too; its fields are listed in docs/operations.md.
"""
from __future__ import annotations

from jetmq import protocol as p
from jetmq.cli.common import RET_OK, CommandError, Connection
from jetmq.errors import JobNotFoundError
from jetmq.formatting import format_job_description, format_json
from jetmq.web.documents import NoSuchJob, description_document, measurements_of, resolve_job_id

__all__ = ["cmd_describe", "description_document", "measurements_of", "resolve_id"]


def cmd_describe(conn: Connection, args: dict) -> int:
    name_or_id = args["<job>"]
    job_id = resolve_id(conn.requester, name_or_id)
    try:
        reply = conn.requester.request(p.DescribeJob(job_id))
    except JobNotFoundError:  # no job of that id (or it went since it was listed)
        raise CommandError(f"No job with name or id '{name_or_id}' was found") from None
    document = description_document(reply, measurements_of(reply.metrics))
    print("\n".join(format_json(document) if args["--json"] else format_job_description(document)))
    return RET_OK


def resolve_id(requester, name_or_id: str) -> int:
    """The id of the job ``name_or_id`` names (see resolve_job_id); CommandError if none."""
    try:
        return resolve_job_id(requester, name_or_id)
    except NoSuchJob as e:
        raise CommandError(str(e)) from None
