"""The member's link thread relays messages between the master and the main thread
without decoding them, except the few it handles itself, which it tells by their type
name alone."""
import pytest

from jetmq import protocol as p
from jetmq.config import MemberConfig
from jetmq.member import link
from jetmq.testing import wait_until
from jetmq.transport import PairSocket, RouterSocket, message_type

pytestmark = pytest.mark.timeout(30)


def test_the_type_names_the_link_looks_for_are_the_protocols():
    for name in [*link._LINK_MESSAGES, b"Heartbeat", b"Goodbye", b"GoodbyeOnChannel"]:
        assert isinstance(getattr(p, name.decode(), None), type), name


def test_a_message_type_is_read_from_the_frames_without_decoding_them():
    assert message_type(p.encode(p.Goodbye("bye"), 7)) == b"Goodbye"
    assert message_type(p.encode(p.Heartbeat(0))) == b"Heartbeat"
    assert message_type([b"not", b"jetmq", b"at", b"all"]) is None
    assert message_type([p.MAGIC]) is None


def test_relayed_frames_are_decoded_at_the_other_end_and_malformed_ones_dropped(caplog):
    main, link_end = PairSocket.pipe()
    try:
        link_end.send_frames([p.MAGIC, b"\x00", b"Nonsense", b"{}"])
        link_end.send_frames(p.encode(p.Goodbye("bye"), 7))
        assert main.socket.poll(5000), "nothing came through the pipe in 5 s"
        assert main.recv() == (p.Goodbye("bye"), 7)  # the malformed one before it dropped
        assert "dropped a malformed message" in caplog.text
    finally:
        main.close()
        link_end.close()


def test_a_goodbye_acknowledged_before_the_link_read_the_main_thread_s_word_still_closes_it():
    # Given a joined link (its handlers driven here, on real sockets, without its thread)
    master = RouterSocket("tcp://127.0.0.1:*")
    main, link_end = PairSocket.pipe()
    member_link = link.MasterLink(MemberConfig(master.endpoint, "the-member", forked=False), "127.0.0.1:1", link_end)
    member_link._connect()
    member_link.state = link.LinkState.JOINED
    try:
        def heard():  # a heartbeat, sent again until the connection is up and the master has it
            member_link._dealer.send(p.Heartbeat(0))
            master.socket.poll(50)
            return master.recv()
        hello = wait_until(heard, 5, "the master heard nothing from the link")
        # When the main thread says goodbye on its job channel, telling the link first,
        main.send(p.GoodbyeOnChannel("bye"))
        # and the master's acknowledgement is what the link reads first
        master.send(hello.peer, p.GoodbyeAck())
        assert member_link._dealer.socket.poll(5000), "the acknowledgement did not come"
        member_link._drain_master()
        # Then the link has left, and waits for nothing more
        assert member_link.state is link.LinkState.CLOSED
    finally:
        member_link._dealer.close(linger_ms=0)
        member_link._waker.close()
        main.close()
        link_end.close()
        master.close(linger_ms=0)
