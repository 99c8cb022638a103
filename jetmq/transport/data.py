"""Data-plane sockets: opaque (header, payload) frame pairs between members, a
member's inbound ROUTER and one outbound DEALER per execution and peer."""
from __future__ import annotations

import errno
import logging

import zmq

from jetmq.transport.base import context, parse_monitor_message, send_all, tcp_endpoint
from jetmq.transport.security import DATA_DOMAIN, Keypair, connect_as, serve

log = logging.getLogger(__name__)

#: The largest frame another member may send on the data plane (a batch of items).
MAX_DATA_MESSAGE_BYTES = 256 << 20


#: Data frames a member buffers per peer before a send would block; flow control
#: (credits) keeps the real amount far below this.
DATA_HWM = 10_000
#: ZeroMQ's own heartbeats on data connections: a connection whose peer stays silent
#: this long (a host gone, a link down) is closed, so it shows as disconnected.
DATA_HEARTBEAT_IVL_MS = 1000
DATA_HEARTBEAT_TIMEOUT_MS = 4000


def _data_heartbeats(sock) -> None:
    sock.setsockopt(zmq.HEARTBEAT_IVL, DATA_HEARTBEAT_IVL_MS)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, DATA_HEARTBEAT_TIMEOUT_MS)
    sock.setsockopt(zmq.HEARTBEAT_TTL, DATA_HEARTBEAT_TIMEOUT_MS)


class DataRouter:
    """A member's inbound data socket: every peer's DataDealer connects to it."""

    def __init__(self, host: str, max_message_bytes: int = MAX_DATA_MESSAGE_BYTES, key: Keypair | None = None):
        """With ``key`` (this member's own), only members this one was told of may connect,
        and every frame says which (see recv)."""
        self._sock = context().socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
        self._authenticated = key is not None
        if key is not None:
            serve(self._sock, key, DATA_DOMAIN)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self._sock.setsockopt(zmq.SNDHWM, DATA_HWM)
        self._sock.setsockopt(zmq.RCVHWM, DATA_HWM)
        _data_heartbeats(self._sock)
        self._sock.bind(tcp_endpoint(host, "*"))
        self.address = self._sock.getsockopt_string(zmq.LAST_ENDPOINT).removeprefix("tcp://")

    @property
    def socket(self):
        return self._sock

    def recv(self) -> tuple[bytes, bytes, bytes, bytes | None] | None:
        """(peer identity, header, payload, the peer's authenticated public key or None), or
        None when nothing is waiting; malformed input is dropped."""
        while True:
            try:
                frames = self._sock.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return None
            if len(frames) == 3:
                key = frames[1].get("User-Id").encode() if self._authenticated else None
                return frames[0].bytes, frames[1].bytes, frames[2].bytes, key
            log.warning("dropped a malformed data message of %d frames on %s", len(frames), self.address)

    def send(self, peer: bytes, header: bytes, payload: bytes) -> bool:
        try:
            send_all(self._sock, [peer, header, payload])
            return True
        except zmq.ZMQError as e:
            if e.errno in (errno.EHOSTUNREACH, errno.EAGAIN):
                return False
            raise

    def close(self) -> None:
        self._sock.close(linger=0)


class ConnectionEvents:
    """A DataDealer's connection events as a pollable object: a member sleeps until its
    data connections change rather than looking at them on a timer."""

    __slots__ = ("socket", "dealer")

    def __init__(self, monitor: zmq.Socket, dealer: "DataDealer"):
        self.socket = monitor
        self.dealer = dealer


class DataDealer:
    """One execution's outbound connection to another member's DataRouter."""

    def __init__(self, address: str, identity: bytes, key: Keypair | None = None, server_public: bytes | None = None):
        """With ``key`` (this member's own), an authenticated, encrypted connection to the
        member whose public key is ``server_public``."""
        self.address = address
        self._sock = context().socket(zmq.DEALER)
        if key is not None:
            connect_as(self._sock, key, server_public)
        self._sock.setsockopt(zmq.MAXMSGSIZE, 1 << 16)  # only credits come back: a few bytes each
        self._sock.setsockopt(zmq.ROUTING_ID, identity)
        self._sock.setsockopt(zmq.SNDHWM, DATA_HWM)
        self._sock.setsockopt(zmq.RCVHWM, DATA_HWM)
        _data_heartbeats(self._sock)
        self._monitor = self._sock.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
        #: polled beside the dealer: readable when the connection went up or down (then watch())
        self.events = ConnectionEvents(self._monitor, self)
        self.down_since: float | None = None  # monotonic time the connection went down, while it is
        self._sock.connect(f"tcp://{address}")

    @property
    def socket(self):
        return self._sock

    def send(self, header: bytes, payload: bytes) -> bool:
        """Queue a frame pair without blocking; False when the queue is full."""
        try:
            send_all(self._sock, [header, payload], copy=len(payload) < 65536)
            return True
        except zmq.Again:
            return False

    def recv(self) -> tuple[bytes, bytes] | None:
        while True:
            try:
                frames = self._sock.recv_multipart(flags=zmq.NOBLOCK)
            except zmq.Again:
                return None
            if len(frames) == 2:
                return frames[0], frames[1]
            log.warning("dropped a malformed data message of %d frames from %s", len(frames), self.address)

    def watch(self, now: float) -> None:
        """Take the connection's events: ``down_since`` is set while it is disconnected."""
        while True:
            try:
                event = parse_monitor_message(self._monitor.recv_multipart(flags=zmq.NOBLOCK))
            except zmq.Again:
                return
            if event["event"] == zmq.EVENT_DISCONNECTED:
                self.down_since = self.down_since or now
            elif event["event"] == zmq.EVENT_CONNECTED:
                self.down_since = None

    def close(self, linger_ms: int) -> None:
        """Close; frames still queued get ``linger_ms`` to reach the peer."""
        self._sock.disable_monitor()
        self._monitor.close(linger=0)
        self._sock.close(linger=linger_ms)
