"""What a peer can make the cluster hold, or do, is bounded: message sizes and the pace of joins.

Raw ZeroMQ peers play the misbehaving party against a real cluster (the ``cluster``
fixture: 2 forked members, heartbeat timeout 1 s).
"""
import time
import uuid

import psutil
import pytest
import zmq

from jetmq.version import PYTHON_VERSION, __version__
from jetmq import protocol as p
from jetmq import transport
from jetmq.transport import data
from jetmq.master.admission import JOIN_BURST, JOINS_PER_S
from tests.integration.keys import authenticated

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

QUICK_S = 1.0


def dealer(address: str) -> zmq.Socket:
    """A raw peer presenting the cluster's key: a key holder that misbehaves."""
    sock = authenticated(zmq.Context.instance().socket(zmq.DEALER))
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"tcp://{address}")
    return sock


def answers_quickly(cluster) -> bool:
    start = time.monotonic()
    assert cluster.cluster().size >= 2
    return time.monotonic() - start < QUICK_S


def rss(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss


def test_a_message_larger_than_the_limit_is_dropped_before_the_master_holds_it(cluster):
    # Given a raw peer of the master
    peer = dealer(cluster.address)
    before = rss(cluster.master_pid)
    try:
        # When it sends a submission larger than the master takes
        huge = p.SubmitJob({}, b"\0" * (transport.MAX_CONTROL_MESSAGE_BYTES + 1), False)
        peer.send_multipart(p.encode(huge, 1))
        # Then it gets no answer (its connection is cut), the master did not grow by it, and serves others
        assert not peer.poll(2000), "the master answered a message over its size limit"
        assert answers_quickly(cluster)
        assert rss(cluster.master_pid) - before < transport.MAX_CONTROL_MESSAGE_BYTES // 4
        assert cluster.get_jobs() == []
    finally:
        peer.close()


def test_a_data_frame_larger_than_the_limit_is_dropped_by_the_member(cluster):
    member = cluster.cluster().members[0]
    peer = dealer(member.address)
    before = rss(member.pid)
    try:
        peer.send_multipart([b"\0" * 21, b"\0" * (data.MAX_DATA_MESSAGE_BYTES + 1)])
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            assert rss(member.pid) - before < data.MAX_DATA_MESSAGE_BYTES // 4, "the member took the frame in"
            time.sleep(0.1)
        assert member.uuid in {m.uuid for m in cluster.cluster().members}
    finally:
        peer.close()


def test_a_flood_of_joining_members_is_admitted_at_a_bounded_pace(cluster):
    # Given 40 would-be members that all say hello at once
    peers = [dealer(cluster.address) for _ in range(40)]
    try:
        for index, peer in enumerate(peers):
            hello = p.Hello(str(uuid.uuid4()), 10_000 + index, "elsewhere", f"127.0.0.1:{20_000 + index}", False,
                            "jet", __version__, PYTHON_VERSION, "")
            peer.send_multipart(p.encode(hello, 1))
        # When half a second has passed
        deadline = time.monotonic() + 0.5
        welcomed = set()
        while time.monotonic() < deadline:
            for index, peer in enumerate(peers):
                while peer.poll(0):
                    msg, _corr = p.decode(peer.recv_multipart())
                    if isinstance(msg, p.Welcome):
                        welcomed.add(index)
            time.sleep(0.01)
        # Then no more than the burst and half a second's worth have joined, and the master answers
        assert JOIN_BURST <= len(welcomed) <= JOIN_BURST + JOINS_PER_S * 0.5 + 1, welcomed
        assert answers_quickly(cluster)
        assert "more than 5 members a second are joining" in (cluster.data_dir / "logs" / "master.log").read_text()
    finally:
        for peer in peers:
            peer.close()
