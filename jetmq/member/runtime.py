"""A member process: its data socket, its master link thread, and its main loop.

The main thread owns the data plane and runs the job tasklets; it hears from the
master through the link thread's pipe, and talks to it on its job channel
(channel.py). A forked member exits when it loses its master; a joined one keeps
waiting for the master to come back. SIGTERM is a graceful leave: say goodbye to
the master, then exit (a second SIGTERM exits at once).
"""
from __future__ import annotations

import enum
import gc
import logging
import math
import os
import signal
import threading
import time
from typing import Callable

from jetmq import clusterkey
from jetmq import protocol as p
from jetmq.config import MemberConfig
from jetmq.member import joblogs
from jetmq.member.executions import ExecutionService
from jetmq.member.channel import MasterChannel
from jetmq.member.link import GOODBYE_ACK_TIMEOUT_S, GOODBYE_LINGER_MS, MasterLink
from jetmq.member.services import ClusterServices
from jetmq.netaddr import advertised_host
from jetmq.transport import PairSocket, Poller
from jetmq.transport.data import DataRouter
from jetmq.transport.security import ZapHandler, new_keypair
from jetmq.transport.waker import Waker

log = logging.getLogger(__name__)


class ExitCode(enum.IntEnum):
    OK = 0  # stopped by the master or by SIGTERM
    MASTER_LOST = 3  # a forked member whose master is gone
    REFUSED = 4  # the master refused this member (e.g. another cluster's name)


#: How long a member that got SIGTERM waits for the master to move its jobs away.
LEAVE_TIMEOUT_S = 60.0
#: The shortest sleep after a step that moved nothing although a processor said it was
#: due: a wrong deadline costs a wake-up a millisecond, never a spinning loop.
MIN_WAIT_S = 0.001


class MemberRuntime:
    def __init__(self, config: MemberConfig, on_joined: Callable[[], None] | None = None):
        self.config = config
        self._on_joined = on_joined
        self._exit_code: ExitCode | None = None
        self._dump_requested: list = []  # SIGUSR1: log every tasklet's state (a diagnostic)
        self._sigterms = 0
        self._leave_asked: float | None = None  # when SIGTERM asked the master to let us go
        self._stepped_when_due = False  # the last idle step ran at once, a deadline being due
        self.refusal: str | None = None  # why the master refused this member, if it did

    def run(self) -> int:
        if self.config.forked:  # Ctrl-C in the master's terminal is the master's to handle
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        signal.signal(signal.SIGUSR1, lambda _s, _f: self._dump_requested.append(True))
        # the cluster key (to talk to the master) and this member's own (for its data socket)
        cluster_key = clusterkey.load(self.config.key_file) if self.config.key_file else None
        own_key = new_keypair() if cluster_key is not None else None
        self.data_socket = DataRouter(self.config.bind_host, key=own_key)
        master_host, _, master_port = self.config.master_endpoint.removeprefix("tcp://").rpartition(":")
        advertised = advertised_host(self.config.bind_host, self.config.advertise_host, master_host, int(master_port))
        data_address = f"{advertised}:{self.data_socket.address.rpartition(':')[2]}"
        # a signal (or another thread) ends the poll at once: a handler's flag is seen now
        self._waker = Waker()
        signal.set_wakeup_fd(self._waker.write_fd, warn_on_full_buffer=False)
        self._pipe, link_end = PairSocket.pipe()
        poller = Poller()
        # what the main thread tells the master: through the link until the master welcomes us
        self.channel = MasterChannel(self.config.master_endpoint, self.config.uuid, poller, self._pipe.send,
                                     cluster_key)
        self.job_logs = joblogs.install(self.config.uuid, self.channel.send)  # per-job logs (member/joblogs.py)
        self.job_logs.wake = self._waker.wake
        self.link = MasterLink(self.config, data_address, link_end, cluster_key, own_key)
        log.info("member %s (pid %d) starting, data address %s, master %s", self.config.uuid, os.getpid(),
                 data_address, self.config.master_endpoint)
        self.link.start()
        poller.register(self._pipe)
        poller.register(self.data_socket)
        poller.register(self._waker)
        master_address = self.config.master_endpoint.removeprefix("tcp://")
        self.services = ClusterServices(self.channel.send, master_address, cluster_key)
        self.executions = ExecutionService(self.config.uuid, self.data_socket, poller,
                                           self.job_logs.before_finish(self.channel.send), self.services,
                                           cluster_key, own_key)
        # every other thread runs now (ZeroMQ's I/O thread, the link): only this one, which
        # runs the jobs, yields to them (and to the master) when the CPUs are busy
        _lower_own_priority(self.config.job_nice)
        # what exists now (modules, the runtime) lives as long as the process: keep it out
        # of the collector's full passes, which would otherwise walk it all, milliseconds
        # that every item in flight waits for (a latency tail)
        gc.freeze()
        try:
            self._loop(poller)
        finally:
            self.executions.close()
            self.executions.snapshots.close()
            self.services.close()
            self.link.stop()
            self.link.join(timeout=GOODBYE_ACK_TIMEOUT_S + 1)
            self.channel.close(linger_ms=GOODBYE_LINGER_MS)  # acknowledged: the master has it all
            self._pipe.close()
            self.data_socket.close()
            signal.set_wakeup_fd(-1)
            self._waker.close()
            ZapHandler.stop()
        log.info("member %s exiting with %s", self.config.uuid, self._exit_code.name)
        return int(self._exit_code)

    def _loop(self, poller: Poller) -> None:
        """Run executions; when no tasklet made progress, sleep in the poller until a
        socket is readable, a signal comes, or the earliest deadline is due (none: the
        member costs nothing until something arrives)."""
        link = self.link
        while self._exit_code is None:
            link.main_busy_since = step_started = time.monotonic()  # read by the link thread for its heartbeats
            progress = self.executions.step()
            if progress:
                self._stepped_when_due = False
                timeout = 0.0
            else:
                timeout = self._idle_timeout(step_started)
                link.main_busy_since = None  # sleeping in the poller is not being stuck
            for ready in _wait(poller, timeout):
                if ready is self._pipe:
                    self._drain_pipe()
                elif ready is self.data_socket:
                    self.executions.on_data()
                elif ready is self._waker:
                    self._waker.drain()
                elif self.channel.owns(ready):
                    for msg in self.channel.received():
                        self._on_master_message(msg)
                elif self.executions.owns(ready):
                    self.executions.on_ready(ready)
            now = time.monotonic()
            self.executions.check_peers(now)
            self.executions.report_metrics(now)
            self.job_logs.push(now)
            if self._sigterms and self._leave_asked is None:
                # graceful: the master first moves this member's jobs, then sends Shutdown
                self._leave_asked = time.monotonic()
                log.info("SIGTERM: asking the master to move this member's jobs before leaving")
                self.channel.send(p.LeaveRequest())
            if self._leave_asked is not None and time.monotonic() - self._leave_asked > LEAVE_TIMEOUT_S:
                self._leave(f"the master did not release this member within {LEAVE_TIMEOUT_S:.0f} s")
            if self._dump_requested:
                self._dump_requested.clear()
                log.warning("state on SIGUSR1:\n%s", self.executions.describe())

    def _idle_timeout(self, step_started: float) -> float | None:
        """How long to sleep after a step that moved nothing: until the earliest of the
        executions' next deadline, the next peer check (a deadline for a peer's answer or
        for a data connection to come back), the next push of job logs and the
        end of a graceful leave; None (until something arrives) when none is set."""
        deadline = _earliest(self.executions.next_deadline(), self.executions.next_peer_check(),
                             self.job_logs.wake_at(),  # per-job log lines waiting to go to the master
                             None if self._leave_asked is None else self._leave_asked + LEAVE_TIMEOUT_S)
        if deadline is None:
            return None
        if deadline <= step_started:
            return MIN_WAIT_S  # due before the step, yet nothing moved
        remaining = deadline - time.monotonic()
        if remaining <= 0:  # it became due during the step: step again at once, but only once
            if self._stepped_when_due:
                return MIN_WAIT_S
            self._stepped_when_due = True
            return 0.0
        self._stepped_when_due = False
        return remaining

    def _on_sigterm(self, _signum, _frame) -> None:
        self._sigterms += 1
        if self._sigterms > 1:
            os._exit(int(ExitCode.OK))

    def _drain_pipe(self) -> None:
        while (received := self._pipe.recv()) is not None:
            self._on_master_message(received[0])

    def _on_master_message(self, msg) -> None:
        """A message from the master (relayed by the link, or on the job channel), or from
        the link itself (MasterLost)."""
        if isinstance(msg, p.Shutdown):
            log.info("shutdown by the master: %s", msg.reason)
            self._leave(msg.reason)
        elif isinstance(msg, p.MasterLost):
            if msg.kind == "refused":
                self.refusal = msg.reason
                self._exit_code = ExitCode.REFUSED
            elif self.config.forked and msg.kind == "lost":
                self._exit_code = ExitCode.MASTER_LOST
            else:
                log.warning("%s; dropping every execution and joining again", msg.reason)
                self.executions.close()
                self.channel.close()  # nothing queued for the lost master reaches its successor
        elif self.executions.on_message(msg):
            pass
        elif isinstance(msg, p.Welcome):
            master_host = self.config.master_endpoint.removeprefix("tcp://").rpartition(":")[0]
            how = self.executions.snapshots.use_store(msg.snapshot_root, msg.store_id, master_host,
                                                      msg.store_port)
            log.info("joined the cluster (membership version %d); %s", msg.membership_version, how)
            self.channel.open()
            if self._on_joined is not None:
                self._on_joined()
        else:
            log.warning("ignored %s from the master", type(msg).__name__)

    def _leave(self, reason: str) -> None:
        """Say goodbye: on the job channel, after everything sent before (else through the
        link); the link closes once the master has acknowledged it."""
        if self.channel.is_open:  # the link hears of it before the master can acknowledge it
            self._pipe.send(p.GoodbyeOnChannel(reason))
            self.channel.send(p.Goodbye(reason))
        else:
            self._pipe.send(p.Goodbye(reason))
        self._exit_code = ExitCode.OK


def _lower_own_priority(increment: int) -> None:
    """Make the calling thread ``increment`` nicer (Linux: a thread's own niceness); the
    threads it starts later inherit it. A system that refuses leaves it as it is."""
    if increment <= 0:
        return
    thread = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + increment))
    except OSError as e:
        log.warning("could not lower the job thread's priority by %d: %s", increment, e)


def _earliest(*deadlines: float | None) -> float | None:
    due = [d for d in deadlines if d is not None]
    return min(due) if due else None


def _wait(poller: Poller, timeout: float | None) -> list:
    """What the poller finds readable within ``timeout`` (None: no limit). The poller
    counts whole milliseconds: the whole ones are waited in it, the last fraction is
    slept precisely, so that a deadline is met within tens of microseconds rather than
    up to a millisecond late (a source's next item is due at its timestamp, and every
    late microsecond is latency). A socket ready during that fraction is read after the
    step that follows: the loop polls again after any step, and the poll is a large part
    of what a wake-up costs an idle member."""
    if not timeout:
        return poller.poll(timeout)
    deadline = time.monotonic() + timeout
    whole_ms = math.floor(timeout * 1000)
    if whole_ms:
        ready = poller.poll((whole_ms - 0.5) / 1000)  # rounded up to whole_ms by the poller
        if ready:
            return ready
    rest = deadline - time.monotonic()
    if rest > 0:
        time.sleep(rest)
    return []
