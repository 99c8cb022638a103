"""A member's link to the master, run on a thread of its own.

The link thread owns the member's DEALER socket: it says hello, sends heartbeats
on time however busy the member's main thread is with user code, notices when the
master is gone, and relays every other message to and from the main thread over an
inproc pipe. A forked member's master is also its parent, so a changed parent pid
tells the link at once that the master died.
"""
from __future__ import annotations

import enum
import logging
import os
import socket
import threading
import time

from jetmq import protocol as p
from jetmq.version import PYTHON_VERSION, __version__
from jetmq.config import MASTER_SILENCE_FACTOR, MemberConfig
from jetmq.transport import DealerSocket, PairSocket, Poller

log = logging.getLogger(__name__)

#: Upper bound on one poll of the link thread (parent-pid checks run this often).
LINK_TICK_S = 0.05
#: How long a leaving member waits for the master to acknowledge its Goodbye before it
#: hangs up anyway (the master is slow or gone).
GOODBYE_ACK_TIMEOUT_S = 1.0
#: How long closing the link may wait to deliver what is still queued to the master.
GOODBYE_LINGER_MS = 500


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
        self.state = LinkState.JOINING
        self.joined_event = threading.Event()
        self._hello_corr = 0  # correlation id of the last Hello: only a refusal of it is final
        self._leave_deadline = 0.0  # when a leaving link stops waiting for GoodbyeAck
        self._session = 0  # connections made so far: each new one is a new session for the master
        #: the last monotonic time the member's main loop ran (it sets this every turn)
        self.main_alive_at = time.monotonic()

    def stop(self) -> None:
        """End the link: a Goodbye already passed to it still goes out, and is waited on."""
        self._stop_event.set()

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

    def _connect(self) -> None:
        self._session += 1
        self._dealer = DealerSocket(self.config.master_endpoint, identity=f"member:{self.config.uuid}".encode(),
                                    key=self._cluster_key)
        self._poller = Poller()
        self._poller.register(self._dealer)
        self._poller.register(self._pipe)
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
            for ready in self._poller.poll(LINK_TICK_S):
                if ready is self._dealer:
                    self._drain_master()
                else:
                    self._drain_pipe()
            if self.state is not LinkState.CLOSED:
                self._tick(time.monotonic())
        self._dealer.close(linger_ms=GOODBYE_LINGER_MS)

    def _drain_master(self) -> None:
        while (received := self._dealer.recv()) is not None:
            msg, corr = received
            self._last_master_seen = time.monotonic()
            if isinstance(msg, p.Welcome):
                self._transition(LinkState.JOINED, f"welcomed by master {msg.master_uuid}")
                self.joined_event.set()
                self._pipe.send(msg)
            elif isinstance(msg, p.GoodbyeAck):
                if self.state is LinkState.LEAVING:
                    self._transition(LinkState.CLOSED, "the master acknowledged our goodbye")
                    return
            elif isinstance(msg, p.Refused):
                self._on_refused(msg.reason, corr)
            elif not isinstance(msg, p.Heartbeat):
                self._pipe.send(msg, corr)

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
        while (received := self._pipe.recv()) is not None:
            msg, corr = received
            if isinstance(msg, p.Goodbye):
                self._leave(msg)
            else:
                self._dealer.send(msg, corr)

    def _leave(self, goodbye: p.Goodbye) -> None:
        """Say goodbye; the connection stays open until the master has taken it (or a timeout)."""
        if self.state is LinkState.JOINED and self._dealer.send(goodbye):
            self._leave_deadline = time.monotonic() + GOODBYE_ACK_TIMEOUT_S
            self._transition(LinkState.LEAVING, f"goodbye sent: {goodbye.reason}")
        else:  # not in the cluster (or not connected): there is nobody to tell
            self._transition(LinkState.CLOSED, f"leaving: {goodbye.reason}")

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
            self._next_hello = now + (self._interval_s if sent else LINK_TICK_S)
        elif self.state is LinkState.JOINED:
            if now - self._last_master_seen > self._timeout_s:
                self._master_lost(f"no heartbeat from the master for {now - self._last_master_seen:.1f} s")
            elif now >= self._next_heartbeat:
                self._next_heartbeat = now + self._interval_s
                self._dealer.send(p.Heartbeat(int(max(0.0, now - self.main_alive_at) * 1000)))

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
