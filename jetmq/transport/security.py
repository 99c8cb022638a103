"""Authentication and encryption of every jetmq socket: ZeroMQ CURVE, admitted by a ZAP handler.

Two kinds of keys:

- **The cluster key**, one CURVE key pair in ``<data-dir>/cluster.key``. The master's
  control port (and its store service) is a CURVE server with it; members and clients
  connect as CURVE clients *with the same key pair*, so only holders of the file can
  complete a handshake, and everything they send is encrypted.
- **A member's own key**, made at start and never written down. A member's data socket
  is a CURVE server with it; peers connect with theirs. The master tells members each
  other's public keys (in executions' member lists, over the authenticated control
  connection), so a member admits data only from members it was told of, and checks
  every batch against the identity its connection authenticated.

The ZAP handler (one per process) decides: domain ``jetmq-control`` admits only the
cluster key; domain ``jetmq-data`` admits the keys of known members, and holds a
request for an unknown key a while (a peer may connect a moment before this member
hears of it) before refusing. A refusal is logged once per address and minute. A peer
without a key, or with another cluster's, fails before ZAP, in the CURVE handshake
itself; nothing it sent is ever decoded.
"""
from __future__ import annotations

import errno
import logging
import threading
import time
from dataclasses import dataclass

import zmq
import zmq.utils.z85

from jetmq.transport.waker import Waker

log = logging.getLogger(__name__)

CONTROL_DOMAIN = b"jetmq-control"
DATA_DOMAIN = b"jetmq-data"
ZAP_ENDPOINT = "inproc://zeromq.zap.01"
#: How long a data connection from a key not yet known waits for this member to hear of it.
UNKNOWN_KEY_WAIT_S = 10.0
#: A refused address is logged at most this often.
REFUSAL_LOG_INTERVAL_S = 60.0


@dataclass(frozen=True)
class Keypair:
    """A CURVE key pair, both halves Z85 text (40 characters)."""

    public: bytes
    secret: bytes


def new_keypair() -> Keypair:
    public, secret = zmq.curve_keypair()
    return Keypair(public, secret)


def valid_key(text: bytes) -> bool:
    """Whether ``text`` is a Z85 CURVE key (40 characters decoding to 32 bytes)."""
    if len(text) != 40:
        return False
    try:
        return len(zmq.utils.z85.decode(text)) == 32
    except Exception:
        return False


def public_of(secret: bytes) -> bytes:
    return zmq.curve_public(secret)


def serve(sock: zmq.Socket, keypair: Keypair, domain: bytes) -> None:
    """Make ``sock`` a CURVE server with ``keypair``, its peers admitted by ZAP in ``domain``."""
    ZapHandler.running()
    sock.setsockopt(zmq.CURVE_SERVER, 1)
    sock.setsockopt(zmq.CURVE_SECRETKEY, keypair.secret)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keypair.public)
    sock.setsockopt(zmq.ZAP_DOMAIN, domain)


def connect_as(sock: zmq.Socket, keypair: Keypair, server_public: bytes) -> None:
    """Make ``sock`` a CURVE client with ``keypair``, of a server whose public key is ``server_public``."""
    sock.setsockopt(zmq.CURVE_SECRETKEY, keypair.secret)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keypair.public)
    sock.setsockopt(zmq.CURVE_SERVERKEY, server_public)


class ZapHandler(threading.Thread):
    """The process's ZAP handler (see the module's doc); start it with ``running()``."""

    _instance: "ZapHandler | None" = None
    _lock = threading.Lock()

    def __init__(self):
        super().__init__(name="jetmq-zap", daemon=True)
        self._control_keys: set[bytes] = set()
        self._data_keys: dict[bytes, str] = {}  # member public key -> its uuid
        self._keys_lock = threading.Lock()
        self._logged: dict[tuple[bytes, bytes], float] = {}
        self.refused = 0
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._waker = Waker()  # a stop, or a key admitted while requests wait for it

    @classmethod
    def running(cls) -> "ZapHandler":
        with cls._lock:
            if cls._instance is None or not cls._instance.is_alive():
                cls._instance = ZapHandler()
                cls._instance.start()
                cls._instance._ready.wait(5)
            return cls._instance

    def admit_cluster_key(self, public: bytes) -> None:
        with self._keys_lock:
            self._control_keys.add(public)

    def admit_member(self, public: bytes, uuid: str) -> None:
        with self._keys_lock:
            self._data_keys[public] = uuid
        self._waker.wake()  # a request parked for this key is answered now

    def _decide(self, domain: bytes, key: bytes) -> bool | None:
        """True to admit, False to refuse, None to wait (an unknown member key)."""
        with self._keys_lock:
            if domain == CONTROL_DOMAIN:
                return key in self._control_keys
            if domain == DATA_DOMAIN:
                return True if key in self._data_keys else None
        return False

    def run(self) -> None:
        sock = zmq.Context.instance().socket(zmq.ROUTER)  # a ROUTER may answer out of order
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(ZAP_ENDPOINT)
        self._ready.set()
        try:
            self._serve(sock)
        except Exception:
            if not self._stopping.is_set() and not sock.context.closed:
                raise
            # the process is ending, its context with it: so do we
        finally:
            if not sock.closed:
                sock.close(linger=0)
            self._waker.close()

    @classmethod
    def stop(cls) -> None:
        """End the process's ZAP handler (before its context is destroyed)."""
        with cls._lock:
            handler, cls._instance = cls._instance, None
        if handler is not None:
            handler._stopping.set()
            handler._waker.wake()
            handler.join(1)

    def _serve(self, sock: zmq.Socket) -> None:
        """Answer requests as they come; sleep until one comes, a parked one times out,
        a key is admitted, or stop() (no polling: an idle process pays nothing here)."""
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(self._waker, zmq.POLLIN)
        parked: list[tuple[float, list[bytes]]] = []
        while not self._stopping.is_set():
            timeout_ms = None
            if parked:
                oldest = min(since for since, _ in parked)
                timeout_ms = max(0, int((oldest + UNKNOWN_KEY_WAIT_S - time.monotonic()) * 1000) + 1)
            try:
                ready = dict(poller.poll(timeout_ms))
            except zmq.ZMQError as e:
                if e.errno == errno.EINTR:
                    continue
                raise
            if self._waker.fileno() in ready:  # pyzmq reports a file by its descriptor
                self._waker.drain()
            if sock in ready:
                while True:
                    try:
                        parked.append((time.monotonic(), sock.recv_multipart(flags=zmq.NOBLOCK)))
                    except zmq.Again:
                        break
            now = time.monotonic()
            waiting = []
            for since, frames in parked:
                verdict = self._verdict(frames)
                if verdict is None and now - since < UNKNOWN_KEY_WAIT_S:
                    waiting.append((since, frames))
                else:
                    self._answer(sock, frames, bool(verdict))
            parked = waiting

    def _verdict(self, frames: list[bytes]) -> bool | None:
        try:
            _route, _empty, _version, _request, domain, _address, _identity, mechanism, *credentials = frames
        except ValueError:
            return False
        if mechanism != b"CURVE" or not credentials:
            return False
        return self._decide(domain, zmq.utils.z85.encode(credentials[0]))

    def _answer(self, sock: zmq.Socket, frames: list[bytes], admit: bool) -> None:
        route, empty, version, request, domain, address = frames[:6]
        key = zmq.utils.z85.encode(frames[8]) if len(frames) > 8 else b""
        if not admit:
            self.refused += 1
            now = time.monotonic()
            if now - self._logged.get((domain, address), -REFUSAL_LOG_INTERVAL_S) >= REFUSAL_LOG_INTERVAL_S:
                self._logged[(domain, address)] = now
                log.warning("refused a connection from %s (%s): its key is not one this cluster admits",
                            address.decode(errors="replace"), domain.decode(errors="replace"))
        sock.send_multipart([route, empty, version, request, b"200" if admit else b"400",
                             b"OK" if admit else b"not admitted", key if admit else b"", b""])


def handshake_failure(event: int, value: int) -> str | None:
    """A failed handshake, from a client socket monitor's event: "refused" (the server's ZAP
    said no), "mismatch" (one side has a key, the other not), "rejected" (the server could
    not make sense of the handshake: a key of another cluster) or "abandoned" (the other
    side closed the connection in the handshake); None for other events."""
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return "refused"
    if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL and value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
        return "mismatch"
    if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
        return "rejected"
    if event == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        return "abandoned"  # the connection ended in the handshake: the other side left
    return None


def explain_handshake_failure(failure: str, has_key: bool) -> str:
    """Why a client's (or joining member's) handshake with a master failed, in words for its user."""
    if not has_key:
        return ("the cluster requires its key (authentication is on) and none was given: use --key-file FILE or "
                "$JET_KEY_FILE (the master keeps it in <data-dir>/cluster.key)")
    if failure == "refused":
        return "the cluster refused the key given"
    return ("the cluster did not accept the key given: it is another cluster's key, or the cluster runs without "
            "authentication (--no-auth; then give --key-file none)")
