"""``jetmq.bootstrapped_instance()``: the client a script gets when `jet submit` runs it.

`jet submit -n NAME -s SNAPSHOT script.py` sets the context before running the
script, so every job the script submits gets that name and initial snapshot, and the
CLI learns which jobs the script submitted. Outside `jet submit` (a script run with
plain `python`), it is, as Jet's bootstrapped instance, an embedded cluster: a local
``jetmq.Cluster`` of two members, started on first use and stopped when the
interpreter exits.
"""
from __future__ import annotations

import atexit
import dataclasses
from dataclasses import dataclass, field

from jetmq.client import JetClient
from jetmq.config import JobConfig
from jetmq.embedded import Cluster
from jetmq.job import Job

#: Members of the embedded cluster a script gets when run without `jet submit`.
EMBEDDED_MEMBERS = 2


@dataclass
class SubmitContext:
    addresses: list[str] | None = None
    job_name: str | None = None
    snapshot_name: str | None = None
    key_file: str | None = None  # as jet's --key-file (None: the default lookup)
    cluster_name: str = "jet"
    submitted: list[Job] = field(default_factory=list)


_context: SubmitContext | None = None


def set_context(context: SubmitContext | None) -> None:
    global _context
    _context = context


class BootstrappedClient(JetClient):
    """A client that applies `jet submit`'s -n and -s to every job and remembers them."""

    def __init__(self, context: SubmitContext):
        super().__init__(context.addresses, key_file=context.key_file, cluster_name=context.cluster_name)
        self._context = context

    def _submit(self, pipeline_or_dag, config: JobConfig | None, if_absent: bool) -> Job:
        config = config or JobConfig()
        if self._context.job_name is not None:
            config = dataclasses.replace(config, name=self._context.job_name)
        if self._context.snapshot_name is not None:
            config = dataclasses.replace(config, initial_snapshot_name=self._context.snapshot_name)
        job = super()._submit(pipeline_or_dag, config, if_absent)
        self._context.submitted.append(job)
        return job


_embedded: Cluster | None = None


def bootstrapped_instance() -> JetClient:
    """The cluster client for a job script (see the module's doc)."""
    global _embedded
    if _context is not None:
        return BootstrappedClient(_context)
    if _embedded is None:
        _embedded = Cluster(members=EMBEDDED_MEMBERS).start()
        atexit.register(_embedded.stop)
    return _embedded
