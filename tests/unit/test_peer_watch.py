"""A member watches its data connections by their events, not on a timer: two
ExecutionServices on real sockets, stepped as the member's loop steps them."""
import time

import pytest

from jetmq import protocol as p
from jetmq import serialization
from jetmq.core import DAG
from jetmq.core.partition import owner_table
from jetmq.member import executions as executions_module
from jetmq.member.executions import ExecutionService
from jetmq.testing import SequenceSource
from jetmq.transport import Poller
from jetmq.transport.data import ConnectionEvents, DataRouter

pytestmark = pytest.mark.timeout(30)

EXECUTION_ID = 77


class NoServices:
    """Where a member's processors would write: nowhere (the DAG here has no sink)."""

    stage = None


class Member:
    """One member's ExecutionService, its data socket and its poller."""

    def __init__(self, index: int):
        self.uuid = f"member-{index}"
        self.router = DataRouter("127.0.0.1")
        self.poller = Poller()
        self.poller.register(self.router)
        self.to_master: list = []
        self.service = ExecutionService(self.uuid, self.router, self.poller, self.to_master.append, NoServices())

    def info(self) -> p.MemberInfo:
        return p.MemberInfo(self.uuid, self.router.address, 0, "127.0.0.1", True, "")

    def turn(self, timeout_s: float = 0.0) -> list:
        """One turn of the member's loop, without stepping executions: what woke it."""
        ready = self.poller.poll(timeout_s)
        for obj in ready:
            if obj is self.router:
                self.service.on_data()
            elif self.service.owns(obj):
                self.service.on_ready(obj)
        self.service.check_peers(time.monotonic())
        return ready

    def sent(self, kind: type) -> list:
        return [msg for msg in self.to_master if isinstance(msg, kind)]


def init_both(members: list[Member]) -> None:
    dag = DAG()
    dag.new_vertex("source", lambda: SequenceSource(2, 10))
    infos = tuple(m.info() for m in members)
    for index, member in enumerate(members):
        member.service.on_message(p.InitExecution(
            job_id=1, execution_id=EXECUTION_ID, member_index=index, members=infos,
            partition_owners=tuple(owner_table([m.uuid for m in members])), config={},
            dag=serialization.dumps_code(dag), restored_snapshot_id=-1, restore_dir=None, metrics_interval_ms=0))


def turn_until(members: list[Member], done, what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"within {timeout_s} s: {what}"
        for member in members:
            member.turn(0.01)


@pytest.fixture
def members():
    pair = [Member(0), Member(1)]
    yield pair
    for member in pair:
        member.service.close()
        member.router.close()


def test_a_data_connection_going_down_wakes_the_member_and_stops_the_execution_when_it_stays_down(
        members, monkeypatch):
    monkeypatch.setattr(executions_module, "PEER_DOWN_TIMEOUT_S", 0.5)
    first, second = members
    init_both(members)
    turn_until(members, lambda: all(m.sent(p.ExecutionInitialized) for m in members),
               "both members report the execution initialised (each answered the other's ping)")
    assert [m.sent(p.ExecutionInitialized)[0].failure for m in members] == [None, None]
    # while the connections are up, no peer check is due: nothing wakes the member on a timer
    turn_until(members, lambda: first.service.next_peer_check() is None, "the connection events settle")
    assert first.turn(0.3) == []

    # the second member's data socket goes away (its process died)
    second.service.close()
    second.router.close()
    went_down = time.monotonic()
    ready = first.turn(5.0)
    assert len(ready) == 1 and type(ready[0]) is ConnectionEvents, \
        f"the member was not woken by its connection's events, but by {ready}"
    due = first.service.next_peer_check()
    assert due is not None and went_down < due <= time.monotonic() + 0.5, \
        "a connection down must be checked once it has been down for PEER_DOWN_TIMEOUT_S"
    assert not first.sent(p.PeerUnreachable)

    turn_until([first], lambda: first.sent(p.PeerUnreachable), "the member reports its peer unreachable")
    assert time.monotonic() - went_down >= 0.5
    report = first.sent(p.PeerUnreachable)[0]
    assert (report.execution_id, report.member_uuid) == (EXECUTION_ID, second.uuid)
    assert "has been down" in report.reason
    assert first.service.next_peer_check() is None  # the execution is gone, and its connections


def test_a_connection_back_up_before_the_timeout_cancels_the_check(members, monkeypatch):
    monkeypatch.setattr(executions_module, "PEER_DOWN_TIMEOUT_S", 5.0)
    init_both(members)
    turn_until(members, lambda: all(m.sent(p.ExecutionInitialized) for m in members), "both initialised")
    first = members[0]
    dealer = next(iter(first.service._executions[EXECUTION_ID].dealers.values()))
    dealer.down_since = time.monotonic()  # as watch() sets it on a disconnect event
    assert first.service.next_peer_check() == pytest.approx(dealer.down_since + 5.0)
    dealer.down_since = None  # as watch() clears it on the connect event that follows
    assert first.service.next_peer_check() is None
