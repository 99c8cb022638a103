"""Who may join the cluster, and when: the master's checks of a member's Hello.

A Hello is refused, with the reason, when it names another cluster, comes while the
cluster stops, comes from other versions of jetmq or Python (jobs travel pickled), or
carries a member id that is not a UUID (it names the member's log file and records).
A Hello that passes may still be deferred, unanswered, so that the member says hello
again a heartbeat later: members join at a bounded rate, and one that keeps dropping
out waits longer each time (membership.py, JoinRateLimit and RejoinBackoff).
"""
from __future__ import annotations

import logging
import time
import uuid as uuidlib

from jetmq import protocol as p
from jetmq.master.membership import ChangeKind, JoinRateLimit, Membership, RejoinBackoff
from jetmq.version import PYTHON_VERSION, __version__

log = logging.getLogger(__name__)

#: Members that may join a second (the master's own forked members aside), and how many at once.
JOINS_PER_S = 5.0
JOIN_BURST = 10
#: A deferred join is logged at most this often.
JOIN_DEFERRAL_LOG_INTERVAL_S = 5.0


class Admission:
    def __init__(self, cluster_name: str, membership: Membership):
        self._cluster_name = cluster_name
        self._membership = membership
        self._joins = JoinRateLimit(JOINS_PER_S, JOIN_BURST)
        self._rejoins = RejoinBackoff()
        self._deferral_logged = -JOIN_DEFERRAL_LOG_INTERVAL_S
        membership.add_listener(lambda change: self._rejoins.departed(change.member.uuid, time.monotonic())
                                if change.kind is ChangeKind.REMOVED else None)

    def refusal(self, hello: p.Hello, stopping: bool) -> str | None:
        """Why the member may not join (None: it may)."""
        if hello.cluster_name != self._cluster_name:
            return f"this is cluster '{self._cluster_name}', not '{hello.cluster_name}'"
        if stopping:
            return "the cluster is stopping"
        if (hello.jetmq_version, hello.python_version) != (__version__, PYTHON_VERSION):
            reason = (f"this master runs jetmq {__version__} on Python {PYTHON_VERSION}, the member jetmq "
                      f"{hello.jetmq_version} on Python {hello.python_version}: jobs travel pickled, so every "
                      f"process of a cluster runs the same versions")
            log.warning("refused member %s (%s): %s", hello.member_uuid, hello.data_address, reason)
            return reason
        if not _is_uuid(hello.member_uuid):
            return f"member id {hello.member_uuid[:40]!r} is not a UUID"
        return None

    def defers(self, hello: p.Hello, joining: bool, now: float) -> bool:
        """True if the member must wait (it is not answered): it rejoined too often, or
        ``joining`` (new to the cluster, not forked by this master) beyond the join rate."""
        backoff = self._rejoins.wait_s(hello.member_uuid, now) if hello.member_uuid not in self._membership else 0
        if backoff <= 0 and (not joining or self._joins.admit(now)):
            return False
        if now - self._deferral_logged >= JOIN_DEFERRAL_LOG_INTERVAL_S:
            self._deferral_logged = now
            why = (f"it dropped out and rejoined too often: it waits {backoff:.1f} s more" if backoff > 0 else
                   f"more than {JOINS_PER_S:.0f} members a second are joining")
            log.warning("deferring the join of member %s (%s): %s", hello.member_uuid, hello.data_address, why)
        return True


def _is_uuid(text: str) -> bool:
    """A member's id names its log file and its records: only a canonical UUID will do."""
    try:
        return str(uuidlib.UUID(text)) == text
    except ValueError:
        return False
