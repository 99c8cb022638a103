"""The Python client of a jetmq cluster: talks to the master, and only to it.

A client is used from one thread (its socket is not thread-safe).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Sequence

from jetmq import clusterkey
from jetmq import protocol as p
from jetmq import serialization
from jetmq.config import DEFAULT_CLUSTER_NAME, JobConfig
from jetmq.core.dag import DAG
from jetmq.errors import JobNotFoundError, SerializationError
from jetmq.ids import id_from_string
from jetmq.job import Job
from jetmq.job_status import JobStatus
from jetmq.names import check_path_name
from jetmq.observable import Observable
from jetmq.requester import REQUEST_TIMEOUT_S, Requester, resolve_addresses


@dataclass(frozen=True)
class Member:
    """A member of the cluster; ``address`` is its data-plane host:port."""

    uuid: str
    address: str
    pid: int
    host: str
    forked: bool
    #: how long its main loop had not run, as last heard (long: stuck in user code); not part
    #: of a member's identity, so members compare equal from one request to the next
    stalled_ms: int = field(default=0, compare=False)
    restarts: int = 0  # replacements the master forked into this member's slot (0: a joined member)


@dataclass(frozen=True)
class JobStateSnapshot:
    """A named (exported) snapshot; a job starts from it with initial_snapshot_name."""

    name: str
    creation_time: int  # epoch ms
    size_bytes: int
    job_id: int
    job_name: str | None


@dataclass(frozen=True)
class ClusterState:
    """What `jet cluster` shows."""

    state: str
    version: str
    cluster_name: str
    master_pid: int
    master_host: str
    membership_version: int
    members: tuple[Member, ...]
    notes: tuple[str, ...] = ()  # e.g. member slots the master gave up respawning

    @property
    def size(self) -> int:
        return len(self.members)


def _to_dag(pipeline_or_dag) -> DAG:
    if isinstance(pipeline_or_dag, DAG):
        return pipeline_or_dag
    to_dag = getattr(pipeline_or_dag, "to_dag", None)
    if to_dag is None:
        raise TypeError(f"a job is a Pipeline or a DAG, not {type(pipeline_or_dag).__name__}")
    return to_dag()


class JetClient:
    """A connection to a jetmq cluster's master."""

    def __init__(self, addresses: str | Sequence[str] | None = None, timeout_s: float = REQUEST_TIMEOUT_S,
                 key_file: str | os.PathLike | None = None, cluster_name: str = DEFAULT_CLUSTER_NAME):
        """The key presented is ``key_file``'s, else $JET_KEY_FILE's, else the one in the default
        data directory of ``cluster_name`` if any ("none": present no key; see jetmq/clusterkey.py)."""
        self._requester = Requester(addresses, timeout_s, clusterkey.client_key(key_file, cluster_name))

    @property
    def address(self) -> str | None:
        """The master's host:port this client talks to (None before the first request)."""
        return self._requester.address

    def _request(self, msg, timeout_s: float | None = None):
        return self._requester.request(msg, timeout_s)

    # ------------------------------------------------------------------ cluster

    def cluster(self) -> ClusterState:
        reply = self._request(p.ClusterRequest())
        members = tuple(Member(m.uuid, m.address, m.pid, m.host, m.forked, stalled, restarts)
                        for m, stalled, restarts in zip(reply.members, reply.stalled_ms, reply.restarts))
        return ClusterState(reply.state, reply.version, reply.cluster_name, reply.master_pid, reply.master_host,
                            reply.membership_version, members, reply.notes)

    def master_stats(self) -> dict:
        """The master's own counters (a diagnostic): turns of its loop and the longest, and
        the bytes it took from and sent to members."""
        reply = self._request(p.MasterStatsRequest())
        return {name: getattr(reply, name) for name in reply.__dataclass_fields__}

    def shutdown_cluster(self) -> tuple[int, ...]:
        """Ask the master to stop its members and itself; the pids of the master and its forked members.

        Returns as soon as the master has accepted; the processes exit shortly after.
        """
        reply = self._request(p.StopClusterRequest())
        return (reply.master_pid, *reply.member_pids)

    def shutdown_member(self, member_uuid: str) -> None:
        """Ask a member to leave gracefully: its jobs restart elsewhere (through a terminal
        snapshot), then it shuts down. Returns once the master has accepted."""
        self._request(p.StopMemberRequest(member_uuid))

    # ------------------------------------------------------------------ jobs

    def new_job(self, pipeline_or_dag, config: JobConfig | None = None) -> Job:
        """Submit a job; it starts at once. The DAG, user functions and all, ships by value."""
        return self._submit(pipeline_or_dag, config, if_absent=False)

    def new_job_if_absent(self, pipeline_or_dag, config: JobConfig) -> Job:
        """Submit a job, unless an active job of the config's name exists: then return that one."""
        if config is None or config.name is None:
            raise ValueError("new_job_if_absent needs a JobConfig with a name")
        return self._submit(pipeline_or_dag, config, if_absent=True)

    def _submit(self, pipeline_or_dag, config: JobConfig | None, if_absent: bool) -> Job:
        config = config or JobConfig()
        dag = _to_dag(pipeline_or_dag)
        dag.validate()
        try:
            blob = serialization.dumps_code(dag)
        except Exception as e:
            raise SerializationError(f"the job cannot be serialized: {type(e).__name__}: {e}") from e
        reply = self._request(p.SubmitJob(config.to_dict(), blob, if_absent, dag.outline()))
        return Job(self._requester, reply.job, config)

    def get_job(self, id_or_name: int | str) -> Job:
        """The job of that id, or of that name (the active one, else the newest); JobNotFoundError if none."""
        if isinstance(id_or_name, str):
            jobs = self.get_jobs(id_or_name)
            if jobs:
                return jobs[0]
            job_id = id_from_string(id_or_name)
            if job_id is None:
                raise JobNotFoundError(f"No job with name or id '{id_or_name}' was found")
        else:
            job_id = id_or_name
        return Job(self._requester, self._request(p.GetJob(job_id)).job)

    def get_jobs(self, name: str | None = None) -> list[Job]:
        """Jobs (of ``name``, if given): active ones first, then finished ones, newest first."""
        summaries = self._request(p.GetJobs(name)).jobs
        ordered = sorted(summaries, key=lambda s: (JobStatus[s.status].is_terminal, -s.submission_time))
        return [Job(self._requester, s) for s in ordered]

    # ------------------------------------------------------------------ data

    def get_map(self, name: str) -> dict:
        """A copy of the named map's entries."""
        return self._requester.get_map(name)

    def get_list(self, name: str) -> list:
        """A copy of the named list's items."""
        return self._requester.get_list(name)

    def get_job_state_snapshots(self) -> list[JobStateSnapshot]:
        """The named snapshots, by name."""
        return [JobStateSnapshot(s.name, s.creation_time, s.size_bytes, s.job_id, s.job_name)
                for s in self._request(p.GetSnapshots()).snapshots]

    def get_job_state_snapshot(self, name: str) -> JobStateSnapshot | None:
        return next((s for s in self.get_job_state_snapshots() if s.name == name), None)

    def delete_job_state_snapshot(self, name: str) -> None:
        """Delete a named snapshot; SnapshotNotFoundError if there is none of that name."""
        check_path_name("snapshot", name)
        self._request(p.DeleteSnapshot(name))

    def get_observable(self, name: str) -> Observable:
        """The named observable: iterate it for results as a job publishes them."""
        return Observable(self._requester.addresses or resolve_addresses(None), name, self._requester.key)

    def close(self) -> None:
        self._requester.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def connect(addresses: str | Sequence[str] | None = None, key_file: str | os.PathLike | None = None) -> JetClient:
    """A client of the cluster at ``addresses`` (default: $JET_ADDRESSES, else 127.0.0.1:5701),
    presenting the cluster key of ``key_file`` (default: see JetClient).

    The connection is checked at once, so an unreachable cluster, or a key it does not
    take, raises here.
    """
    client = JetClient(addresses if addresses is not None else resolve_addresses(None), key_file=key_file)
    client.cluster()
    return client
