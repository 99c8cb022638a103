"""The master's ROUTER socket tells connections apart by an id of their own, not by fd.

Real sockets on 127.0.0.1: a closed connection's fd is handed to the next one accepted,
and the disconnect of the old one must not be taken for the new one's.
"""
import pytest

from jetmq import protocol as p
from jetmq.testing import wait_until
from jetmq.transport import DealerSocket, RouterSocket

pytestmark = pytest.mark.timeout(30)


def _hello(session: int) -> p.Hello:
    return p.Hello("5f0b8a2e-3c44-4a8e-9f77-1b2c3d4e5f60", 1, "h", "127.0.0.1:9", False, "jet", "v", "py", "", session)


def _receive(router: RouterSocket):
    return wait_until(router.recv, 10, "no message reached the router")


def test_a_reused_fd_is_a_new_connection_and_the_old_ones_close_names_only_the_old_one():
    router = RouterSocket("tcp://127.0.0.1:*")
    monitor = router.monitor()
    try:
        # Given a peer connected, known by the connection its hello came on
        first = DealerSocket(router.endpoint, identity=b"member:x")
        wait_until(lambda: first.send(_hello(1)), 10, "the first dealer never connected")
        hello = _receive(router)
        first_connection = monitor.connection_of(hello.fd)
        assert first_connection > 0
        # When it hangs up and the same peer connects again (the kernel hands out the lowest free fd)
        first.close(linger_ms=0)
        second = DealerSocket(router.endpoint, identity=b"member:x")
        try:
            wait_until(lambda: second.send(_hello(2)), 10, "the second dealer never connected")
            again = _receive(router)
            # Then the new connection has an id of its own, even where it has the old one's fd
            second_connection = monitor.connection_of(again.fd)
            assert second_connection > first_connection, (first_connection, second_connection, hello.fd, again.fd)
            # and the close reported is the old connection's, never the new one's
            closed = wait_until(monitor.take_closed, 10, "the first connection's close was never reported")
            assert closed == [first_connection]
            assert monitor.connection_of(again.fd) == second_connection
        finally:
            second.close(linger_ms=0)
        assert wait_until(monitor.take_closed, 10, "the second close was never reported") == [second_connection]
    finally:
        router.close(linger_ms=0)
