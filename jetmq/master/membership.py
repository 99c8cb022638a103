"""The master's view of which members are in the cluster, versioned.

Pure bookkeeping, no sockets and no clock of its own: the server passes the time in,
so expiry is tested without sleeping. Every change bumps ``version`` and is logged
and handed to the listeners (the topology policy restarts, fails or suspends jobs on them).
"""
from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from typing import Callable

from jetmq.protocol import MemberInfo

log = logging.getLogger(__name__)

#: A member whose main loop has not run this long is reported stuck.
STUCK_AFTER_MS = 10_000


class ChangeKind(enum.Enum):
    ADDED = "added"
    REMOVED = "removed"


@dataclass(frozen=True)
class MembershipChange:
    """One step of membership history: ``member`` was added or removed at ``version``."""

    version: int
    kind: ChangeKind
    member: MemberInfo
    reason: str


@dataclass
class MemberRecord:
    """A live member and how the master reaches it."""

    info: MemberInfo
    peer: bytes  # routing id on the master's ROUTER socket
    connection: int  # id of its connection, to match disconnect events (-1 unknown)
    last_seen: float  # monotonic seconds of the last message from it
    session: int = 1  # the member's link session: a new one means it dropped its work and joined again
    stalled_ms: int = 0  # how long its main loop had not run, as its last heartbeat said


@dataclass
class Membership:
    heartbeat_timeout_s: float
    version: int = 0
    _members: dict[str, MemberRecord] = field(default_factory=dict)
    _listeners: list[Callable[[MembershipChange], None]] = field(default_factory=list)

    def add_listener(self, listener: Callable[[MembershipChange], None]) -> None:
        self._listeners.append(listener)

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, uuid: str) -> bool:
        return uuid in self._members

    def get(self, uuid: str) -> MemberRecord | None:
        return self._members.get(uuid)

    def records(self) -> list[MemberRecord]:
        """Members in the order they joined."""
        return list(self._members.values())

    def infos(self) -> tuple[MemberInfo, ...]:
        return tuple(r.info for r in self._members.values())

    def by_peer(self, peer: bytes) -> MemberRecord | None:
        for record in self._members.values():
            if record.peer == peer:
                return record
        return None

    def by_connection(self, connection: int) -> MemberRecord | None:
        for record in self._members.values():
            if record.connection == connection:
                return record
        return None

    def add(self, info: MemberInfo, peer: bytes, connection: int, now: float,
            session: int = 1) -> MembershipChange | None:
        """Admit a member. A hello repeated in the same session (the member had no answer
        yet) only refreshes its record; a member that says hello as a new process, or in a
        new session (it lost the master and dropped its executions), replaces its old record:
        the cluster sees it leave and join, so its jobs restart."""
        old = self._members.get(info.uuid)
        if old is not None:
            if old.info == info and old.session == session:
                old.peer, old.connection, old.last_seen = peer, connection, now
                return None
            self.remove(info.uuid, "it joined again as a new process" if old.info != info else
                        "it joined again in a new session (it had lost the master and dropped its executions)")
        self._members[info.uuid] = MemberRecord(info, peer, connection, now, session)
        return self._changed(ChangeKind.ADDED, info, "joined")

    def remove(self, uuid: str, reason: str) -> MembershipChange | None:
        """Remove a member; None if it was already gone (detectors race; the first wins)."""
        record = self._members.pop(uuid, None)
        if record is None:
            return None
        return self._changed(ChangeKind.REMOVED, record.info, reason)

    def heard_stall(self, record: MemberRecord, stalled_ms: int) -> None:
        """A member's heartbeat said how long its main loop has not run: a member stuck in
        user code is reported (once per episode) rather than looking healthy forever."""
        was_stuck = record.stalled_ms >= STUCK_AFTER_MS
        record.stalled_ms = stalled_ms
        if stalled_ms >= STUCK_AFTER_MS and not was_stuck:
            log.warning("member %s (%s, pid %d) is stuck: its main loop has not run for %.1f s (user code that "
                        "does not return?); the jobs on it make no progress", record.info.uuid,
                        record.info.address, record.info.pid, stalled_ms / 1000)
        elif was_stuck and stalled_ms < STUCK_AFTER_MS:
            log.warning("member %s runs again", record.info.uuid)

    def touch(self, uuid: str, now: float) -> None:
        record = self._members.get(uuid)
        if record is not None:
            record.last_seen = now

    def expire(self, now: float) -> list[MembershipChange]:
        """Remove every member silent for longer than the heartbeat timeout."""
        silent = [r for r in self._members.values() if now - r.last_seen > self.heartbeat_timeout_s]
        changes = []
        for record in silent:
            silence_ms = (now - record.last_seen) * 1000
            change = self.remove(record.info.uuid, f"no heartbeat for {silence_ms:.0f} ms")
            if change is not None:
                changes.append(change)
        return changes

    def _changed(self, kind: ChangeKind, info: MemberInfo, reason: str) -> MembershipChange:
        self.version += 1
        change = MembershipChange(self.version, kind, info, reason)
        log.info(
            "membership v%d: member %s (%s, pid %d) %s: %s; size now %d",
            change.version, info.uuid, info.address, info.pid, kind.value, reason, len(self._members),
        )
        for listener in self._listeners:
            listener(change)
        return change


@dataclass
class JoinRateLimit:
    """At most ``per_second`` members join a second, after a burst of ``burst`` (a token
    bucket): each join restarts jobs (after the scale-up delay), so a flood of joins, or
    a member that keeps dropping out and rejoining, must not keep the cluster restarting.
    A member refused a turn is not answered, and says hello again a heartbeat later."""

    per_second: float
    burst: int
    _tokens: float = -1.0
    _last: float = 0.0

    def admit(self, now: float) -> bool:
        if self._tokens < 0:
            self._tokens, self._last = float(self.burst), now
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.per_second)
        self._last = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


@dataclass
class RejoinBackoff:
    """A member that keeps dropping out and rejoining (a flapping link, a host that
    stalls) waits longer each time before it is let back: after ``free`` departures within
    ``window_s``, base_s, then twice as long each time, up to cap_s. Each rejoin restarts
    jobs; without this, members that drop out under load and rejoin at once feed the
    load that drops them (a restart storm)."""

    window_s: float = 60.0
    free: int = 2
    base_s: float = 1.0
    cap_s: float = 30.0
    _departures: dict[str, list[float]] = field(default_factory=dict)

    def departed(self, uuid: str, now: float) -> None:
        recent = [t for t in self._departures.get(uuid, ()) if now - t < self.window_s]
        self._departures[uuid] = recent + [now]

    def wait_s(self, uuid: str, now: float) -> float:
        """How much longer the member must wait before it may join again (0: now)."""
        recent = [t for t in self._departures.get(uuid, ()) if now - t < self.window_s]
        if len(recent) <= self.free:
            return 0.0
        delay = min(self.cap_s, self.base_s * 2 ** (len(recent) - self.free - 1))
        return max(0.0, recent[-1] + delay - now)
