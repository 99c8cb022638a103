"""The master's view of its ROUTER's connections: which closed, and whose handshake failed."""
from __future__ import annotations

import logging
import os
import socket
import time

import zmq

from jetmq.transport.base import parse_monitor_message
from jetmq.transport.security import handshake_failure

log = logging.getLogger(__name__)

#: A refused peer address is logged at most this often.
REFUSAL_LOG_INTERVAL_S = 60.0


class DisconnectMonitor:
    """Connections of a ROUTER socket, each with an id of its own, and which of them closed;
    handshakes that failed are logged with the peer's address once per host and minute. (A
    failure event names no connection: it is the oldest accepted one whose handshake has not
    ended.)

    A file descriptor is no connection's identity: the kernel gives a closed connection's
    fd to the next one accepted, so "fd 7 closed" read after a hello from the new fd 7
    would drop the wrong member. Every accepted connection gets a new id instead, and a
    message's connection is the one its fd belongs to when the message is read (a
    connection's accept event is queued before any message of it)."""

    def __init__(self, sock: zmq.Socket):
        self._sock = sock
        self._handshaking: dict[int, str] = {}  # accepted connections' fds -> peer address, in order
        self._connections: dict[int, int] = {}  # fd -> id of the connection that has it
        self._next_id = 0
        self._closed: list[int] = []  # ids of connections that closed, not yet taken
        self._logged: dict[str, float] = {}
        self.refused = 0

    @property
    def socket(self):
        return self._sock

    def connection_of(self, fd: int) -> int:
        """The id of the connection that has ``fd`` now (-1: unknown)."""
        self._read_events()
        return self._connections.get(fd, -1)

    @property
    def closed_pending(self) -> bool:
        """Closed connections were read (by connection_of) but not yet taken."""
        return bool(self._closed)

    def take_closed(self) -> list[int]:
        """The ids of the connections that closed since the last call."""
        self._read_events()
        closed, self._closed = self._closed, []
        return closed

    def _read_events(self) -> None:
        while True:
            try:
                event = parse_monitor_message(self._sock.recv_multipart(flags=zmq.NOBLOCK))
            except zmq.Again:
                return
            kind, fd = event["event"], int(event["value"])
            if kind == zmq.EVENT_DISCONNECTED:
                self._handshaking.pop(fd, None)
                connection = self._connections.pop(fd, None)
                if connection is not None:
                    self._closed.append(connection)
            elif kind == zmq.EVENT_ACCEPTED:
                self._next_id += 1
                self._connections[fd] = self._next_id
                self._handshaking[fd] = _peer_address(fd)
            elif kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._handshaking.pop(next(iter(self._handshaking), None), None)
            elif handshake_failure(kind, event["value"]) is not None and self._handshaking:
                first = next(iter(self._handshaking))
                self._refused(self._handshaking.pop(first), handshake_failure(kind, event["value"]))

    def _refused(self, address: str, failure: str) -> None:
        self.refused += 1
        now = time.monotonic()
        host = address.rpartition(":")[0] or address  # a new connection comes from a new port
        if now - self._logged.get(host, -REFUSAL_LOG_INTERVAL_S) >= REFUSAL_LOG_INTERVAL_S:
            self._logged[host] = now
            log.warning("refused a connection from %s in its handshake: %s (logged once a minute per host)",
                        address, _REFUSAL_REASONS[failure])


#: Why a handshake failed, as the master can tell it. A peer without a key and one with
#: another cluster's both close the connection as soon as they see the handshake fail
#: themselves: when they are first, the master only sees the connection end.
_REFUSAL_REASONS = {
    "mismatch": "it has no key",
    "refused": "its key is not this cluster's",
    "rejected": "its key is not this cluster's",
    "abandoned": "it closed the connection in its handshake (it has no key, or another cluster's)",
}


def _peer_address(fd: int) -> str:
    """The host:port at the other end of the socket ``fd`` (not ours: the fd is ZeroMQ's)."""
    try:
        with socket.socket(fileno=os.dup(fd)) as peer:
            host, port = peer.getpeername()[:2]
            return f"{host}:{port}"
    except OSError:
        return "an unknown address"
