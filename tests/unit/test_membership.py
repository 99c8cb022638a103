"""Membership: the master's versioned view of its members, on an injected clock (no sleeps)."""
import dataclasses

import pytest

from jetmq.master.membership import ChangeKind, Membership, MembershipChange
from jetmq.protocol import MemberInfo

pytestmark = pytest.mark.timeout(30)

TIMEOUT_S = 1.0


def member(n: int, pid: int | None = None, forked: bool = True) -> MemberInfo:
    return MemberInfo(f"uuid-{n}", f"127.0.0.1:{6000 + n}", 1000 + n if pid is None else pid, "host-a", forked, "")


def peer(n: int) -> bytes:
    return f"member:uuid-{n}".encode()


@pytest.fixture
def membership():
    return Membership(heartbeat_timeout_s=TIMEOUT_S)


@pytest.fixture
def changes(membership) -> list[MembershipChange]:
    seen: list[MembershipChange] = []
    membership.add_listener(seen.append)
    return seen


def test_a_new_membership_is_empty_at_version_zero(membership):
    assert len(membership) == 0
    assert membership.version == 0
    assert membership.records() == [] and membership.infos() == ()
    assert "uuid-1" not in membership and membership.get("uuid-1") is None


def test_when_members_are_added_then_each_bumps_the_version_and_they_are_listed_in_join_order(membership, changes):
    # When three members join
    returned = [membership.add(member(n), peer(n), connection=10 + n, now=0.0) for n in (3, 1, 2)]
    # Then each is an ADDED change with the next version, seen by the listener too
    assert [c.version for c in returned] == [1, 2, 3]
    assert all(c.kind is ChangeKind.ADDED for c in returned)
    assert [c.member for c in returned] == [member(3), member(1), member(2)]
    assert changes == returned
    assert membership.version == 3 and len(membership) == 3
    assert membership.infos() == (member(3), member(1), member(2))
    assert [r.info.uuid for r in membership.records()] == ["uuid-3", "uuid-1", "uuid-2"]
    assert "uuid-1" in membership
    record = membership.get("uuid-1")
    assert (record.info, record.peer, record.connection, record.last_seen) == (member(1), peer(1), 11, 0.0)


def test_when_a_member_is_removed_then_the_version_bumps_and_listeners_hear_why(membership, changes):
    membership.add(member(1), peer(1), 11, 0.0)
    membership.add(member(2), peer(2), 12, 0.0)
    # When one is removed
    change = membership.remove("uuid-1", "its process exited")
    # Then
    assert change == MembershipChange(3, ChangeKind.REMOVED, member(1), "its process exited")
    assert changes[-1] == change
    assert membership.infos() == (member(2),)
    assert "uuid-1" not in membership and membership.by_peer(peer(1)) is None and membership.by_connection(11) is None


def test_when_an_absent_member_is_removed_then_nothing_changes(membership, changes):
    # detectors race: the pidfd, the disconnect event and the heartbeat may all report one death
    membership.add(member(1), peer(1), 11, 0.0)
    assert membership.remove("uuid-1", "first detector") is not None
    assert membership.remove("uuid-1", "second detector") is None
    assert membership.remove("never-joined", "whatever") is None
    assert membership.version == 2
    assert [c.reason for c in changes] == ["joined", "first detector"]


def test_every_listener_hears_every_change_in_order(membership):
    first, second = [], []
    membership.add_listener(first.append)
    membership.add_listener(lambda c: second.append((c.version, c.kind)))
    membership.add(member(1), peer(1), 11, 0.0)
    membership.remove("uuid-1", "gone")
    assert [(c.version, c.kind) for c in first] == second == [(1, ChangeKind.ADDED), (2, ChangeKind.REMOVED)]


def test_when_the_same_process_says_hello_again_in_its_session_then_its_record_is_refreshed_without_a_version_bump(
        membership, changes):
    # Given a member known on connection 11
    membership.add(member(1), peer(1), 11, now=0.0)
    membership.add(member(2), peer(2), 12, now=0.0)
    # When the same process (same info) says hello again in the same session (it had no answer yet)
    change = membership.add(member(1), b"member:uuid-1:new", 21, now=5.0)
    # Then nothing changed for the cluster: no version bump, no listener call, same place in the order
    assert change is None
    assert membership.version == 2 and len(changes) == 2
    assert [r.info.uuid for r in membership.records()] == ["uuid-1", "uuid-2"]
    # and it is found by its new connection only, and counts as seen now
    record = membership.get("uuid-1")
    assert (record.peer, record.connection, record.last_seen) == (b"member:uuid-1:new", 21, 5.0)
    assert membership.by_connection(21) is record and membership.by_connection(11) is None
    assert membership.by_peer(b"member:uuid-1:new") is record and membership.by_peer(peer(1)) is None


def test_when_a_member_says_hello_in_a_new_session_then_the_cluster_sees_it_leave_and_join(membership, changes):
    # Given a member known in its first session
    membership.add(member(1), peer(1), 11, now=0.0, session=1)
    # When the same process says hello in a second session (it lost the master and dropped its executions)
    change = membership.add(member(1), peer(1), 12, now=4.0, session=2)
    # Then its executions' loss is a membership change: removed, then added again
    assert [(c.version, c.kind) for c in changes] == [
        (1, ChangeKind.ADDED), (2, ChangeKind.REMOVED), (3, ChangeKind.ADDED)]
    assert "new session" in changes[1].reason
    assert change == changes[-1]
    assert membership.get("uuid-1").session == 2 and membership.by_connection(12).info == member(1)
    # and a repeated hello of that new session changes nothing
    assert membership.add(member(1), peer(1), 12, now=4.5, session=2) is None and membership.version == 3


def test_when_a_new_process_joins_with_a_known_uuid_then_the_old_one_is_removed_and_the_new_one_added(
        membership, changes):
    # Given a member with pid 1001
    membership.add(member(1), peer(1), 11, now=0.0)
    # When a different process (pid 2002) joins with the same uuid
    reborn = member(1, pid=2002)
    change = membership.add(reborn, peer(1), 31, now=1.0)
    # Then the cluster saw the old process leave and the new one join
    assert [(c.version, c.kind, c.member.pid) for c in changes] == [
        (1, ChangeKind.ADDED, 1001), (2, ChangeKind.REMOVED, 1001), (3, ChangeKind.ADDED, 2002)]
    assert "new process" in changes[1].reason
    assert change == changes[-1]
    assert membership.infos() == (reborn,)
    assert membership.by_connection(31).info == reborn and membership.by_connection(11) is None


@pytest.mark.parametrize("field,value", [("address", "127.0.0.1:1"), ("host", "host-b"), ("forked", False)])
def test_a_member_whose_info_changed_in_any_field_counts_as_a_new_process(membership, field, value):
    original = member(1)
    changed = dataclasses.replace(original, **{field: value})
    membership.add(original, peer(1), 11, 0.0)
    assert membership.add(changed, peer(1), 12, 0.0) is not None
    assert membership.version == 3  # removed, then added
    assert membership.infos() == (changed,)


def test_when_a_member_is_silent_beyond_the_timeout_then_expire_removes_it(membership, changes):
    # Given two members seen at t=0 and t=0.5
    membership.add(member(1), peer(1), 11, now=0.0)
    membership.add(member(2), peer(2), 12, now=0.5)
    # When the clock reaches exactly the timeout of the first: still a member
    assert membership.expire(now=TIMEOUT_S) == []
    assert len(membership) == 2
    # When it passes it
    expired = membership.expire(now=1.25)
    # Then only the silent one is removed, with its silence in the reason
    assert [(c.kind, c.member.uuid) for c in expired] == [(ChangeKind.REMOVED, "uuid-1")]
    assert expired[0].reason == "no heartbeat for 1250 ms"
    assert membership.infos() == (member(2),)
    assert changes[-1] == expired[0]
    # and the second goes later, the version counting both
    assert [c.member.uuid for c in membership.expire(now=1.6)] == ["uuid-2"]
    assert membership.version == 4 and len(membership) == 0


def test_when_a_member_is_touched_then_its_expiry_moves_on(membership):
    membership.add(member(1), peer(1), 11, now=0.0)
    membership.touch("uuid-1", now=0.9)
    assert membership.expire(now=1.5) == []
    membership.touch("unknown", now=0.9)  # no error, no member made up
    assert len(membership) == 1
    assert [c.member.uuid for c in membership.expire(now=1.91)] == ["uuid-1"]


def test_when_every_member_is_silent_then_expire_removes_them_all_at_once(membership, changes):
    for n in range(5):
        membership.add(member(n), peer(n), 10 + n, now=float(n) / 10)
    expired = membership.expire(now=10.0)
    assert sorted(c.member.uuid for c in expired) == [f"uuid-{n}" for n in range(5)]
    assert [c.version for c in expired] == [6, 7, 8, 9, 10]
    assert len(membership) == 0 and membership.expire(now=20.0) == []


def test_an_expired_member_that_says_hello_again_is_added_back_as_a_change(membership, changes):
    membership.add(member(1), peer(1), 11, now=0.0)
    membership.expire(now=2.0)
    change = membership.add(member(1), peer(1), 12, now=2.5)
    assert change is not None and change.kind is ChangeKind.ADDED and change.version == 3
    assert membership.expire(now=3.0) == []


def test_by_connection_and_by_peer_find_the_right_member(membership):
    for n in range(4):
        membership.add(member(n), peer(n), 20 + n, 0.0)
    for n in range(4):
        assert membership.by_connection(20 + n).info == member(n)
        assert membership.by_peer(peer(n)).info == member(n)
    assert membership.by_connection(99) is None
    assert membership.by_peer(b"client-xyz") is None


def test_joins_beyond_the_burst_wait_for_the_rate():
    from jetmq.master.membership import JoinRateLimit
    limit = JoinRateLimit(per_second=5, burst=10)
    # a flood at one instant: the burst gets in, the rest waits
    assert [limit.admit(100.0) for _ in range(12)] == [True] * 10 + [False] * 2
    # a second later five more have their turn, not more
    assert [limit.admit(101.0) for _ in range(6)] == [True] * 5 + [False]
    # and after a quiet while the burst is back, never beyond it
    assert sum(limit.admit(200.0) for _ in range(20)) == 10


def test_a_member_that_keeps_rejoining_waits_longer_each_time():
    from jetmq.master.membership import RejoinBackoff
    backoff = RejoinBackoff(window_s=60, free=2, base_s=1, cap_s=4)
    backoff.departed("m", 0.0)
    backoff.departed("m", 1.0)
    assert backoff.wait_s("m", 1.0) == 0  # two departures are free
    backoff.departed("m", 2.0)
    assert backoff.wait_s("m", 2.0) == 1 and backoff.wait_s("m", 3.0) == 0
    backoff.departed("m", 3.0)
    assert backoff.wait_s("m", 3.0) == 2
    for t in (10.0, 11.0, 12.0):
        backoff.departed("m", t)
    assert backoff.wait_s("m", 12.0) == 4  # capped
    assert backoff.wait_s("other", 12.0) == 0
    assert backoff.wait_s("m", 200.0) == 0  # the window has passed
