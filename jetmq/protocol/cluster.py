"""Messages of membership and of the cluster itself (members, clients, master)."""
from __future__ import annotations

from jetmq.protocol.codec import message, nested


# ---------------------------------------------------------------------------------
# Shared records


@nested
class MemberInfo:
    """A member as the master sees it; ``address`` is its data-plane host:port."""

    uuid: str
    address: str
    pid: int
    host: str
    forked: bool
    curve_key: str  # the public key of its data socket ("" in a cluster without authentication)


# ---------------------------------------------------------------------------------
# Member <-> master


@message
class Hello:
    """A member announces itself; the master answers Welcome or Refused."""

    member_uuid: str
    pid: int
    host: str
    data_address: str
    forked: bool
    cluster_name: str
    jetmq_version: str  # a member must run the master's jetmq and Python: jobs travel pickled
    python_version: str
    curve_key: str  # the public key of its data socket ("" without authentication)
    #: which connection of the member's link this is (1, 2, ...): a member that lost the master
    #: drops its executions and says hello on a new one, and the master must see it leave and join
    session: int = 1


@message
class Welcome:
    """The master accepted a member into the cluster."""

    master_uuid: str
    heartbeat_interval_ms: int
    heartbeat_timeout_ms: int
    membership_version: int
    snapshot_root: str  # the snapshot store, where members write and read snapshots themselves
    store_id: str  # members whose host mounts the store at snapshot_root find this id in it
    store_port: int  # else they reach it through the master's store service on this port


@message
class Refused:
    """The master refuses a peer: a wrong cluster name, or a member it does not know."""

    reason: str


@message
class Heartbeat:
    """A sign of life; sent both ways every heartbeat interval. A member's says how long
    its main loop has not run (``stalled_ms``): its heartbeats come from a thread of their
    own, so a member stuck in user code is alive, and must be seen as stuck."""

    stalled_ms: int


@message
class Goodbye:
    """A member leaves the cluster on its own accord (graceful shutdown)."""

    reason: str


@message
class GoodbyeAck:
    """The master has taken a member's Goodbye: the member may close its connection.

    A member waits for it (a bounded time) before hanging up, so the master always
    learns that it left, and never only that its connection closed."""


@message
class LeaveRequest:
    """A member asks to leave gracefully: the master moves its jobs, then sends Shutdown."""


@message
class StopMemberRequest:
    """A client asks a member to leave gracefully (`jet-stop --member UUID`)."""

    member_uuid: str


@message
class Shutdown:
    """The master tells a member to stop and exit."""

    reason: str


@message
class MasterLost:
    """In-process only: a member's link thread tells its main thread it lost the master.

    ``kind``: "refused" (the master will not have us: stop), "lost" (the master is gone
    or silent) or "dropped" (the master counted us gone; we join again).
    """

    reason: str
    kind: str


@message
class GoodbyeOnChannel:
    """In-process only: a member's main thread says goodbye on its job channel (it tells
    its link thread first); the link waits for the master's GoodbyeAck, then closes."""

    reason: str


# ---------------------------------------------------------------------------------
# Client <-> master (requests carry a correlation id, replies echo it)


@message
class ClusterRequest:
    """Ask for the cluster's state and members (`jet cluster`)."""


@message
class ClusterReply:
    state: str
    version: str
    cluster_name: str
    master_pid: int
    master_host: str
    membership_version: int
    members: tuple[MemberInfo, ...]
    stalled_ms: tuple[int, ...]  # per member, how long its main loop has not run (as last heard)
    restarts: tuple[int, ...]  # per member, replacements forked into its slot (0 for joined members)
    notes: tuple[str, ...]  # what else `jet cluster` says (slots the master gave up respawning)
    heard_ms: tuple[int, ...] = ()  # per member, how long ago the master last heard from it


@message
class StopClusterRequest:
    """Ask the master to stop every member and then itself (`jet-stop`)."""


@message
class StopClusterReply:
    master_pid: int
    member_pids: tuple[int, ...]


@message
class MasterStatsRequest:
    """Ask for the master's own counters (how its loop fares, what it carries)."""


@message
class MasterStatsReply:
    """The master's counters since it started: turns of its loop, the slow ones (over
    50 ms), the longest and the step that took most of it, and the bytes of messages
    it took from and sent to members (state never travels through the master: these
    stay small whatever the size of the jobs' state)."""

    turns: int
    slow_turns: int
    longest_turn_ms: float
    longest_turn_step: str
    bytes_from_members: int
    bytes_to_members: int
    largest_message_to_members: int
    store_service_bytes_written: int  # through the store service (members without the store mounted)
    store_service_bytes_read: int


__all__ = [name for name, value in list(globals().items()) if isinstance(value, type) and value.__module__ == __name__]
