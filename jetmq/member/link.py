"""A member's link to the master, run on a thread of its own.

The link thread owns the member's DEALER socket: it says hello, sends heartbeats
on time however busy the member's main thread is with user code, notices when the
master is gone, and relays what the master sends to the main thread over an inproc
pipe. What the main thread sends goes on its own job channel (channel.py) once the
master has welcomed the member; before that, the link relays it too. A forked
member's master is also its parent, so a changed parent pid tells the link that the
master died (the kernel's parent-death signal, see lifeline.py, is faster still).

The thread sleeps in its poller until a message comes, the main thread stops it, or
its next timer is due: the next heartbeat, the master's silence turning into its loss,
the next hello while joining, the end of the wait for a goodbye's acknowledgement.
"""
from __future__ import annotations

import enum
import logging
import os
import socket
import threading
import time

from jetmq import protocol as p
from jetmq.ids import member_identity
from jetmq.version import PYTHON_VERSION, __version__
from jetmq.config import MASTER_SILENCE_FACTOR, MemberConfig
from jetmq.transport import DealerSocket, PairSocket, Poller, message_type
from jetmq.transport.waker import Waker

log = logging.getLogger(__name__)

#: How soon a hello that could not be queued (not connected yet) is tried again.
HELLO_RETRY_S = 0.05
#: How long a leaving member waits for the master to acknowledge its Goodbye before it
#: hangs up anyway (the master is slow or gone).
GOODBYE_ACK_TIMEOUT_S = 1.0
#: How long closing the link may wait to deliver what is still queued to the master.
GOODBYE_LINGER_MS = 500


#: What the master sends that the link handles itself (the rest goes to the main thread).
_LINK_MESSAGES = {b"Welcome", b"GoodbyeAck", b"Refused"}


class LinkState(enum.Enum):
    JOINING = "joining"  # hello sent, no welcome yet
    JOINED = "joined"  # in the cluster, heartbeating
    LEAVING = "leaving"  # goodbye sent: waiting for the master to acknowledge it
    CLOSED = "closed"  # the link has ended (master lost for good, or member stopping)


class MasterLink(threading.Thread):
    def __init__(self, config: MemberConfig, data_address: str, pipe: PairSocket, cluster_key=None, own_key=None):
        """``cluster_key`` authenticates the link; ``own_key`` is the data socket's, whose
        public half the Hello tells the master (None, None: a cluster without authentication)."""
        super().__init__(name="jetmq-master-link", daemon=True)
        self.config = config
        self._cluster_key = cluster_key
        self._curve_key = own_key.public.decode() if own_key is not None else ""
        self.data_address = data_address
        self._pipe = pipe
        self._interval_s = config.heartbeat_interval_ms / 1000
        self._timeout_s = config.heartbeat_timeout_ms * MASTER_SILENCE_FACTOR / 1000
        self._parent_pid = os.getppid()
        self._stop_event = threading.Event()
        self._waker = Waker()  # stop() ends the poll at once
        self.state = LinkState.JOINING
        self.joined_event = threading.Event()
        self._hello_corr = 0  # correlation id of the last Hello: only a refusal of it is final
        self._leave_deadline = 0.0  # when a leaving link stops waiting for GoodbyeAck
        self._session = 0  # connections made so far: each new one is a new session for the master
        #: when the member's main loop began its current turn (it sets this every turn), or
        #: None while it sleeps in its poller: a heartbeat says how long the loop is stuck
        self.main_busy_since: float | None = None

    def stop(self) -> None:
        """End the link: a Goodbye already passed to it still goes out, and is waited on."""
        self._stop_event.set()
        self._waker.wake()

    def _transition(self, new: LinkState, why: str) -> None:
        log.info("link %s -> %s: %s", self.state.value, new.value, why)
        self.state = new

    # ------------------------------------------------------------------ the loop

    def run(self) -> None:
        try:
            self._run()
        except Exception:
            log.exception("master link failed")
            self._pipe.send(p.MasterLost("the master link thread failed", "lost"))
        finally:
            self._pipe.close()
            self._waker.close()

    def _connect(self) -> None:
        self._session += 1
        self._dealer = DealerSocket(self.config.master_endpoint, identity=member_identity(self.config.uuid),
                                    key=self._cluster_key)
        self._poller = Poller()
        self._poller.register(self._dealer)
        self._poller.register(self._pipe)
        self._poller.register(self._waker)
        now = time.monotonic()
        self._last_master_seen = now
        self._next_hello = now
        self._next_heartbeat = now

    def _run(self) -> None:
        self._connect()
        while self.state is not LinkState.CLOSED:
            if self._stop_event.is_set() and self.state is not LinkState.LEAVING:
                self._drain_pipe()  # a Goodbye the main thread sent just before stopping us
                if self.state is not LinkState.LEAVING:
                    break
            for ready in self._poller.poll(self._next_wake(time.monotonic())):
                if ready is self._dealer:
                    self._drain_master()
                elif ready is self._pipe:
                    self._drain_pipe()
                else:
                    self._waker.drain()
            if self.state is not LinkState.CLOSED:
                self._tick(time.monotonic())
        self._dealer.close(linger_ms=GOODBYE_LINGER_MS)

    def _drain_master(self) -> None:
        """Handle what the link itself is told; relay the rest to the main thread
        undecoded (it decodes them: one decoding per message, not two)."""
        while (frames := self._dealer.recv_frames()) is not None:
            self._last_master_seen = time.monotonic()
            kind = message_type(frames)
            if kind == b"Heartbeat":
                continue
            if kind not in _LINK_MESSAGES:
                self._pipe.send_frames(frames)
                continue
            received = self._dealer.decode(frames)
            if received is None:
                continue
            msg, corr = received
            if isinstance(msg, p.Welcome):
                self._transition(LinkState.JOINED, f"welcomed by master {msg.master_uuid}")
                self.joined_event.set()
                self._pipe.send(msg)
            elif isinstance(msg, p.GoodbyeAck):
                if self.state is LinkState.JOINED:  # the main thread said goodbye on its channel:
                    self._drain_pipe()  # it told us first, but we may not have read it yet
                if self.state is LinkState.LEAVING:
                    self._transition(LinkState.CLOSED, "the master acknowledged our goodbye")
                    return
            elif isinstance(msg, p.Refused):
                self._on_refused(msg.reason, corr)

    def _on_refused(self, reason: str, corr: int) -> None:
        if self.state is LinkState.LEAVING:  # the master had dropped us already: nothing to wait for
            self._transition(LinkState.CLOSED, f"the master no longer knew us ({reason})")
        elif self.state is LinkState.JOINED:  # the master dropped us: join again
            self._transition(LinkState.JOINING, f"refused by the master ({reason})")
            self._next_hello = 0.0
            # the master counts this member gone: whatever it was running is orphaned
            self._pipe.send(p.MasterLost(f"dropped by the master: {reason}", "dropped"))
        elif corr != self._hello_corr:  # a stale answer to a heartbeat sent before we were dropped
            log.info("ignored a refusal of an earlier message while joining: %s", reason)
        else:
            log.error("the master refused this member: %s", reason)
            self._transition(LinkState.CLOSED, reason)
            self._pipe.send(p.MasterLost(reason, "refused"))

    def _drain_pipe(self) -> None:
        """Pass the main thread's messages to the master as they are (those it sends
        while it has no job channel); a Goodbye, or word that the main thread says its
        own on the job channel, the link handles."""
        while (frames := self._pipe.recv_frames()) is not None:
            if message_type(frames) not in (b"Goodbye", b"GoodbyeOnChannel"):
                self._dealer.send_frames(frames)
            elif (received := self._dealer.decode(frames)) is not None:
                self._leave(received[0])

    def _leave(self, goodbye: p.Goodbye | p.GoodbyeOnChannel) -> None:
        """Say goodbye (unless the main thread does); the connection stays open until the
        master has taken it (or a timeout)."""
        sent = isinstance(goodbye, p.GoodbyeOnChannel)
        if self.state is LinkState.JOINED and (sent or self._dealer.send(goodbye)):
            self._leave_deadline = time.monotonic() + GOODBYE_ACK_TIMEOUT_S
            self._transition(LinkState.LEAVING, f"goodbye sent: {goodbye.reason}")
        else:  # not in the cluster (or not connected): there is nobody to tell
            self._transition(LinkState.CLOSED, f"leaving: {goodbye.reason}")

    def _next_wake(self, now: float) -> float:
        """Seconds until _tick() has something to do (the poll's timeout)."""
        if self.state is LinkState.LEAVING:
            due = self._leave_deadline
        elif self.state is LinkState.JOINING:
            due = self._next_hello
        else:  # the next heartbeat; the parent check runs with it
            due = min(self._next_heartbeat, self._last_master_seen + self._timeout_s)
        return max(0.0, due - now)

    def _tick(self, now: float) -> None:
        if self.state is LinkState.LEAVING:
            if now >= self._leave_deadline:
                self._transition(LinkState.CLOSED, f"the master did not acknowledge our goodbye within "
                                                   f"{GOODBYE_ACK_TIMEOUT_S:.1f} s")
            return
        if self.config.forked and os.getppid() != self._parent_pid:
            self._master_lost("the master process (our parent) exited")
            return
        if self.state is LinkState.JOINING and now >= self._next_hello:
            failure = self._dealer.handshake_failure()
            if failure is not None:  # a key problem: saying hello again will not help
                reason = failure
                log.error("the master refused this member: %s", reason)
                self._transition(LinkState.CLOSED, reason)
                self._pipe.send(p.MasterLost(reason, "refused"))
                return
            hello = p.Hello(self.config.uuid, os.getpid(), socket.gethostname(), self.data_address,
                            self.config.forked, self.config.cluster_name, __version__, PYTHON_VERSION,
                            self._curve_key, self._session)
            # not yet connected: try again on the next tick rather than a whole interval later
            self._hello_corr += 1
            sent = self._dealer.send(hello, self._hello_corr)
            self._next_hello = now + (self._interval_s if sent else HELLO_RETRY_S)
        elif self.state is LinkState.JOINED:
            if now - self._last_master_seen > self._timeout_s:
                self._master_lost(f"no heartbeat from the master for {now - self._last_master_seen:.1f} s")
            elif now >= self._next_heartbeat:
                self._next_heartbeat = now + self._interval_s
                busy_since = self.main_busy_since
                stalled_s = 0.0 if busy_since is None else max(0.0, now - busy_since)
                self._dealer.send(p.Heartbeat(int(stalled_s * 1000)))

    def _master_lost(self, reason: str) -> None:
        log.warning("master lost: %s", reason)
        self._pipe.send(p.MasterLost(reason, "lost"))
        if self.config.forked:
            self._transition(LinkState.CLOSED, reason)
        else:  # a joined member waits for the master to come back, on a fresh socket
            self._transition(LinkState.JOINING, reason)
            self.joined_event.clear()
            self._dealer.close()
            self._poller = None
            self._connect()
