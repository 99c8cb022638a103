"""Messages of membership and of the cluster itself (members, clients, master)."""
from __future__ import annotations

import typing

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


@message
class Welcome:
    """The master accepted a member into the cluster."""

    master_uuid: str
    heartbeat_interval_ms: int
    heartbeat_timeout_ms: int
    membership_version: int


@message
class Refused:
    """The master refuses a peer: a wrong cluster name, or a member it does not know."""

    reason: str


@message
class Heartbeat:
    """A sign of life; sent both ways every heartbeat interval."""


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


@message
class StopClusterRequest:
    """Ask the master to stop every member and then itself (`jet-stop`)."""


@message
class StopClusterReply:
    master_pid: int
    member_pids: tuple[int, ...]


@message
class ErrorReply:
    """A request failed; ``error_type`` names a class in :mod:`jetmq.errors`."""

    error_type: str
    message: str



__all__ = [name for name, value in list(globals().items()) if isinstance(value, type) and value.__module__ == __name__]
