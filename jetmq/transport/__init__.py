"""ZeroMQ sockets: the only package that imports zmq.

Control-plane sockets here send and receive :mod:`jetmq.protocol` messages, never
raw frames: a ROUTER bound by the master, DEALERs connected by members and clients,
and inproc PAIRs between a member's threads. Receiving never raises on foreign or
malformed input: such frames are logged and dropped. Data-plane sockets (defined
in data.py) move opaque byte batches between members; base.py holds what both
share, monitor.py the master's view of its connections, security.py CURVE and ZAP,
waker.py a pollable wake-up.
"""
from __future__ import annotations

import errno
import logging
import math
import os
import threading
from typing import NamedTuple

import zmq

from jetmq import protocol
from jetmq.errors import AddressInUseError
from jetmq.transport.base import BLOCK, context, parse_monitor_message, send_all, tcp_endpoint
from jetmq.transport.monitor import DisconnectMonitor
from jetmq.transport.security import (CONTROL_DOMAIN, Keypair, ZapHandler, connect_as, explain_handshake_failure,
                                      handshake_failure, serve)

__all__ = ["CONTROL_HWM", "LINGER_MS", "MAX_CONTROL_MESSAGE_BYTES", "MAX_REPLY_MESSAGE_BYTES", "DealerSocket",
           "DisconnectMonitor", "Incoming", "PairSocket", "Poller", "RouterSocket", "context", "message_type",
           "parse_monitor_message", "send_all", "tcp_endpoint"]

log = logging.getLogger(__name__)

#: A control message queued for an unreachable peer is dropped when the socket closes.
LINGER_MS = 0
#: Control traffic is small; a peer that falls this far behind is not reading.
CONTROL_HWM = 100_000
#: The largest message a peer may send the master (a submitted DAG, a batch of a sink's
#: output): ZeroMQ drops the connection of a peer that sends more, before allocating it.
MAX_CONTROL_MESSAGE_BYTES = 256 << 20
#: The largest message the master may send a member or a client (a job's DAG, a named map
#: or list read whole): larger, since it is the master's own.
MAX_REPLY_MESSAGE_BYTES = 1 << 30


class Incoming(NamedTuple):
    """A decoded message from a peer of a ROUTER socket."""

    peer: bytes  # ZeroMQ routing id of the sender
    msg: object
    corr: int
    fd: int  # the connection's file descriptor, to match disconnect events
    size: int  # bytes of the message's frames


def _decode_or_log(frames, where: str):
    try:
        return protocol.decode(frames)
    except protocol.ProtocolError as e:
        log.warning("dropped a malformed message on %s: %s", where, e)
        return None


def message_type(frames: list[bytes]) -> bytes | None:
    """The type name a message's frames carry (as bytes), read without decoding the
    message: what a relay needs to tell the few it handles itself from those it passes
    on untouched. None for frames that are no jetmq message."""
    if len(frames) < 4 or frames[0] != protocol.MAGIC:
        return None
    return frames[2]


class RouterSocket:
    """The master's one control socket: bound, many peers, each with a routing id."""

    def __init__(self, endpoint: str, max_message_bytes: int = MAX_CONTROL_MESSAGE_BYTES,
                 key: Keypair | None = None):
        """With ``key`` (the cluster key), only its holders complete a handshake."""
        self._sock = context().socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
        if key is not None:
            ZapHandler.running().admit_cluster_key(key.public)
            serve(self._sock, key, CONTROL_DOMAIN)
        self._sock.setsockopt(zmq.LINGER, LINGER_MS)
        self._sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # unknown peer -> error, not silence
        self._sock.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a reconnecting member takes its id back
        self._sock.setsockopt(zmq.SNDHWM, CONTROL_HWM)
        self._sock.setsockopt(zmq.RCVHWM, CONTROL_HWM)
        try:
            self._sock.bind(endpoint)
        except zmq.ZMQError as e:
            self._sock.close()
            if e.errno == errno.EADDRINUSE:
                raise AddressInUseError(f"address {endpoint.removeprefix('tcp://')} is already in use") from None
            raise AddressInUseError(f"cannot bind {endpoint}: {e.strerror}") from None
        self.endpoint = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._monitor: zmq.Socket | None = None

    @property
    def socket(self):
        return self._sock

    def send(self, peer: bytes, msg, corr: int = 0) -> int:
        """Send without blocking; the bytes sent, or 0 when the peer is gone or not reading."""
        frames = protocol.encode(msg, corr)
        try:
            send_all(self._sock, [peer, *frames])
            return sum(len(f) for f in frames)
        except zmq.ZMQError as e:
            if e.errno in (errno.EHOSTUNREACH, errno.EAGAIN):
                return 0
            raise

    def recv(self) -> Incoming | None:
        """The next well-formed message, or None when nothing is waiting."""
        while True:
            try:
                frames = self._sock.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return None
            try:
                fd = frames[-1].get(zmq.SRCFD) if len(frames) > 1 else -1
            except zmq.ZMQError:  # no source fd (a ZMTP/1.0 peer, or a connection already gone)
                fd = -1
            decoded = _decode_or_log([f.bytes for f in frames[1:]], self.endpoint)
            if decoded is not None:
                return Incoming(frames[0].bytes, decoded[0], decoded[1], fd, sum(len(f) for f in frames[1:]))

    def monitor(self) -> "DisconnectMonitor":
        """A socket reporting which connections closed (and which handshakes failed)."""
        if self._monitor is None:
            self._monitor = self._sock.get_monitor_socket(
                zmq.EVENT_DISCONNECTED | zmq.EVENT_ACCEPTED | zmq.EVENT_HANDSHAKE_SUCCEEDED
                | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
        return DisconnectMonitor(self._monitor)

    def close(self, linger_ms: int = LINGER_MS) -> None:
        if self._monitor is not None:
            self._sock.disable_monitor()
            self._monitor.close(linger=0)
        self._sock.close(linger=linger_ms)


class _MessageReceiver:
    """recv() for a socket whose peer sends whole messages (``_sock``), named ``where``
    in what it logs; recv_frames() and decode() for a relay, which decodes only some."""

    _sock: zmq.Socket
    where: str

    def recv(self):
        """The next well-formed ``(msg, corr)``, or None when nothing is waiting (a
        malformed message, such as one relayed undecoded, is logged and dropped)."""
        while (frames := self.recv_frames()) is not None:
            decoded = self.decode(frames)
            if decoded is not None:
                return decoded
        return None

    def recv_frames(self) -> list[bytes] | None:
        """The next message's frames, undecoded, or None when nothing is waiting."""
        try:
            return self._sock.recv_multipart(flags=zmq.NOBLOCK)
        except zmq.Again:
            return None

    def decode(self, frames: list[bytes]):
        """``(msg, corr)`` of frames recv_frames() gave, or None (malformed: logged)."""
        return _decode_or_log(frames, self.where)


class DealerSocket(_MessageReceiver):
    """A member's or client's connection to the master."""

    def __init__(self, endpoint: str, identity: bytes | None = None, immediate: bool = True,
                 max_message_bytes: int = MAX_REPLY_MESSAGE_BYTES, key: Keypair | None = None):
        """With ``key`` (the cluster key), the connection is authenticated and encrypted;
        ``handshake_failure()`` then says why the master would not have it."""
        self.endpoint = self.where = endpoint
        self._sock = context().socket(zmq.DEALER)
        self._sock.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
        self._has_key = key is not None
        if key is not None:
            connect_as(self._sock, key, key.public)
        self._monitor = self._sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_AUTH
                                                      | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
                                                      | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)
        self._sock.setsockopt(zmq.LINGER, LINGER_MS)
        self._sock.setsockopt(zmq.SNDHWM, CONTROL_HWM)
        self._sock.setsockopt(zmq.RCVHWM, CONTROL_HWM)
        # queue nothing while disconnected: a send then fails at once instead of
        # piling up stale hellos and requests that arrive in a burst on reconnect
        # (a requester passes immediate=False: with IMMEDIATE, a reply already received is
        # discarded when the peer hangs up before it is read, e.g. a master's last StopClusterReply)
        self._sock.setsockopt(zmq.IMMEDIATE, 1 if immediate else 0)
        self._sock.setsockopt(zmq.RECONNECT_IVL, 100)
        self._sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        if identity is not None:
            self._sock.setsockopt(zmq.ROUTING_ID, identity)
        try:
            self._sock.connect(endpoint)
        except zmq.ZMQError as e:
            self._close_monitor()
            self._sock.close()
            raise ConnectionError(f"cannot connect to {endpoint.removeprefix('tcp://')}: {e.strerror}") from None

    @property
    def socket(self):
        return self._sock

    def handshake_failure(self) -> str | None:
        """Why the last handshake with the master failed (a key problem), in words, if one did."""
        failure = None
        while True:
            try:
                event = parse_monitor_message(self._monitor.recv_multipart(flags=zmq.NOBLOCK))
            except zmq.Again:
                return explain_handshake_failure(failure, self._has_key) if failure else None
            failure = handshake_failure(event["event"], event["value"]) or failure

    def _close_monitor(self) -> None:
        if self._monitor is not None:
            self._sock.disable_monitor()
            self._monitor.close(linger=0)
            self._monitor = None

    def send(self, msg, corr: int = 0) -> bool:
        """Queue ``msg`` without blocking; False when not connected or the queue is full."""
        return self.send_frames(protocol.encode(msg, corr))

    def send_frames(self, frames: list[bytes]) -> bool:
        """Queue an encoded message as it is (a relay's); False as send()."""
        try:
            send_all(self._sock, frames)
            return True
        except zmq.Again:
            return False


    def close(self, linger_ms: int = LINGER_MS) -> None:
        self._close_monitor()
        self._sock.close(linger=linger_ms)


class PairSocket(_MessageReceiver):
    """One end of an in-process channel between two threads of one process."""

    _counter = 0
    _lock = threading.Lock()

    def __init__(self, sock: zmq.Socket, name: str):
        self._sock = sock
        self.name = self.where = name

    @classmethod
    def pipe(cls) -> tuple["PairSocket", "PairSocket"]:
        """Two connected ends; give each to one thread."""
        with cls._lock:
            cls._counter += 1
            address = f"inproc://jetmq-pipe-{os.getpid()}-{cls._counter}"
        a = context().socket(zmq.PAIR)
        a.setsockopt(zmq.LINGER, 0)
        a.bind(address)
        b = context().socket(zmq.PAIR)
        b.setsockopt(zmq.LINGER, 0)
        b.connect(address)
        return cls(a, address), cls(b, address)

    @property
    def socket(self):
        return self._sock

    def send(self, msg, corr: int = 0) -> None:
        send_all(self._sock, protocol.encode(msg, corr), BLOCK)

    def send_frames(self, frames: list[bytes]) -> None:
        """Pass an encoded message on as it is (the other end decodes it)."""
        send_all(self._sock, frames, BLOCK)

    def close(self) -> None:
        self._sock.close(linger=0)


def _poll_key(obj):
    """What zmq.Poller knows ``obj`` by, and reports it as: a socket, or a file descriptor."""
    if isinstance(obj, int):
        return obj
    sock = getattr(obj, "socket", None)
    return sock if sock is not None else obj.fileno()


class Poller:
    """Wait on sockets (anything with ``.socket``) and raw file descriptors at once."""

    def __init__(self):
        self._poller = zmq.Poller()
        self._by_key: dict[object, object] = {}

    def register(self, obj) -> None:
        """``obj``: one of our sockets (polled by its ``.socket``), a file descriptor, or
        anything with a ``fileno()`` (a Waker)."""
        key = _poll_key(obj)
        self._by_key[key] = obj
        self._poller.register(key, zmq.POLLIN)

    def unregister(self, obj) -> None:
        key = _poll_key(obj)
        if self._by_key.pop(key, None) is not None:
            self._poller.unregister(key)

    def poll(self, timeout_s: float | None) -> list:
        """The registered objects that are readable, waiting at most ``timeout_s`` (None:
        until one is), rounded up to whole milliseconds: a deadline is never woken for
        just before it is due."""
        try:
            events = self._poller.poll(None if timeout_s is None else max(0, math.ceil(timeout_s * 1000)))
        except zmq.ZMQError as e:
            if e.errno == errno.EINTR:
                return []
            raise
        return [self._by_key[key] for key, _ in events if key in self._by_key]
