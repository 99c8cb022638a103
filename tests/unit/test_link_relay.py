"""The member's link thread relays messages between the master and the main thread
without decoding them, except the few it handles itself, which it tells by their type
name alone."""
import pytest

from jetmq import protocol as p
from jetmq.member import link
from jetmq.transport import PairSocket, message_type

pytestmark = pytest.mark.timeout(30)


def test_the_type_names_the_link_looks_for_are_the_protocols():
    for name in [*link._LINK_MESSAGES, b"Heartbeat", b"Goodbye"]:
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
