"""The master process: one ROUTER socket, one poll loop, membership and member processes.

After every poll the loop expires silent members and sends due heartbeats (the
Paranoid Pirate pattern). A member's death is learnt from whichever detector fires
first: its pidfd (forked members: the child exited), a disconnect event on its
connection (any member whose process or host closed the socket), or its heartbeats
stopping (a hung or unreachable member).
"""
from __future__ import annotations

import logging
import os
import socket
import time
import uuid as uuidlib
from typing import Callable

import psutil

from jetmq.version import __version__
from jetmq import clusterkey
from jetmq import protocol as p
from jetmq.config import ClusterConfig, MemberConfig, MEMBER_START_TIMEOUT_S
from jetmq.errors import AddressInUseError, ClusterKeyError, ClusterStartError, MemberNotFoundError
from jetmq.ids import MAX_NODE_ID, FlakeIdGenerator, link_identity
from jetmq.master.admission import Admission
from jetmq.master.coordinator import JobCoordinator
from jetmq.master.datadir import DataDir
from jetmq.master.repository import JobRepository
from jetmq.master.requests import ClientRequests
from jetmq.master.topology import TopologyPolicy
from jetmq.master.store import NamedStore
from jetmq.master.launcher import STOP_GRACE_S, MemberLauncher, describe_exit
from jetmq.master.io import IoWorker
from jetmq.master.job_logs import JobLogs
from jetmq.master.loopstats import TurnMeter
from jetmq.master.membership import Membership
from jetmq.master.quarantine import Quarantine
from jetmq.master.respawn import RespawnPolicy
from jetmq.master.signals import StopSignals
from jetmq.master.storeservice import StoreService
from jetmq.storage.access import store_id
from jetmq.netaddr import is_wildcard, primary_address
from jetmq.transport import Incoming, Poller, RouterSocket, tcp_endpoint

log = logging.getLogger(__name__)

#: How often joined members on this host are checked for a vanished process.
LOCAL_PID_CHECK_INTERVAL_S = 0.2
#: Upper bound on one poll, so expiry and heartbeats run even when all is quiet.
MAX_POLL_S = 0.1
#: How long a stopping master may take to deliver its last replies and Shutdown messages.
SHUTDOWN_LINGER_MS = 1000
#: At shutdown, how long pending disk work may take to finish.
IO_STOP_TIMEOUT_S = 10.0
#: The same error of the master's loop is logged at most this often.
ERROR_LOG_INTERVAL_S = 60.0


class MasterServer:
    """Runs the control plane until stopped by a signal or a StopClusterRequest."""

    def __init__(self, config: ClusterConfig, on_ready: Callable[[str], None] | None = None,
                 on_failure: Callable[[str], None] | None = None):
        self.config = config
        self.uuid = str(uuidlib.uuid4())
        self.data_dir = DataDir(config.resolved_data_dir)
        self.membership = Membership(heartbeat_timeout_s=config.heartbeat_timeout_ms / 1000)
        self._interval_s = config.heartbeat_interval_ms / 1000
        self._on_ready = on_ready
        self._on_failure = on_failure
        self._ready = False
        self.failure: str | None = None  # why the master could not start
        self._stopping = False
        self._stop_reason = ""
        self._next_heartbeat = 0.0
        self._next_pid_check = 0.0
        self._last_error_logged: dict[tuple[str, str], float] = {}
        self.admission = Admission(config.cluster_name, self.membership)
        self.respawn = RespawnPolicy(config.member_count, enabled=config.respawn)
        self.handlers: dict[type, Callable[[Incoming], None]] = {
            p.Hello: self._on_hello,
            p.Heartbeat: self._on_heartbeat,
            p.Goodbye: self._on_goodbye,
            p.ClusterRequest: self._on_cluster_request,
            p.StopClusterRequest: self._on_stop_request,
            p.MasterStatsRequest: self._on_stats_request,
        }
        self._bytes_from_members = self._bytes_to_members = self._largest_to_members = 0
        # disk work runs off the loop: job records, commits and the structures log in order on
        # one thread, copies and deletions of snapshots on another (see master/io.py)
        self.store_io = IoWorker("store")
        self.bulk_io = IoWorker("bulk")
        self.turns = TurnMeter()
        self.coordinator = JobCoordinator(self.membership, self._send_to_member,
                                          FlakeIdGenerator(os.getpid() & MAX_NODE_ID),
                                          NamedStore(self.store_io),
                                          JobRepository(self.data_dir.jobs_dir, config.job_result_ttl_ms,
                                                        config.max_job_results,
                                                        Quarantine(self.data_dir.quarantine_dir)),
                                          config.resolved_snapshot_dir, self.store_io, self.bulk_io)
        self.coordinator.metrics_interval_ms = config.metrics_collection_interval_ms
        self.handlers.update(ClientRequests(self.coordinator, self._reply).handlers())
        self.job_logs = JobLogs(self.coordinator, self.membership, self._reply)  # `jet logs`
        self.handlers.update(self.job_logs.handlers())
        self.handlers.update({t: self._from_member(h) for t, h in self.job_logs.member_handlers().items()})
        self.topology = TopologyPolicy(self.coordinator, self.membership, config.scale_up_delay_ms,
                                       self._send_to_member)
        self.handlers[p.LeaveRequest] = self._from_member(lambda uuid, msg: self.topology.leave(uuid))
        self.handlers[p.StopMemberRequest] = self._on_stop_member
        for msg_type, handler in self.coordinator.member_handlers().items():
            self.handlers[msg_type] = self._from_member(handler)
        self.router: RouterSocket | None = None
        self.launcher: MemberLauncher | None = None
        self.store_service: StoreService | None = None
        self._signals: StopSignals | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def address(self) -> str:
        """host:port of the control socket, with the port resolved when it was 0."""
        return self.router.endpoint.removeprefix("tcp://")

    def run(self) -> int:
        """Start, serve until stopped, stop; the process exit code."""
        try:
            self._start()
        except (ClusterStartError, AddressInUseError) as e:
            self.failure = str(e)
            if isinstance(e, AddressInUseError):
                self.failure += ": is another jetmq cluster running? Choose another port with --port"
            log.error("%s", self.failure)
            self._shutdown()  # before reporting: jet-start --daemon kills us as soon as it hears
            if self._on_failure:
                self._on_failure(self.failure)
            return 1
        try:
            self._serve()
        finally:
            self._shutdown()
        return 0

    def _start(self) -> None:
        self.data_dir.claim()
        try:
            self.key = None if self.config.no_auth else clusterkey.create_or_load(self.data_dir.root)
        except ClusterKeyError as e:
            raise ClusterStartError(str(e)) from None
        self.coordinator.store.open_log(self.data_dir.structures_log, Quarantine(self.data_dir.quarantine_dir))
        self.coordinator.load()
        self.router = RouterSocket(tcp_endpoint(self.config.bind_host, self.config.port), key=self.key)
        self._monitor = self.router.monitor()
        self._store_id = store_id(self.config.resolved_snapshot_dir)
        self.store_service = StoreService(self.config.resolved_snapshot_dir, self.config.bind_host, self.key)
        self.store_service.start()
        # forked members reach their master on this host; they bind their data sockets where the
        # master binds, and advertise (bound to every interface) the host's reachable address
        wildcard = is_wildcard(self.config.bind_host)
        connect_host = "127.0.0.1" if wildcard else self.config.bind_host
        template = MemberConfig(
            master_endpoint=tcp_endpoint(connect_host, self.router.endpoint.rsplit(":", 1)[1]),
            uuid="",
            forked=True,
            master_pid=os.getpid(),
            cluster_name=self.config.cluster_name,
            bind_host=self.config.bind_host,
            advertise_host=self.config.advertise_host or (primary_address() if wildcard else None),
            key_file=None if self.key is None else str(self.data_dir.root / clusterkey.KEY_FILE),
            heartbeat_interval_ms=self.config.heartbeat_interval_ms,
            heartbeat_timeout_ms=self.config.heartbeat_timeout_ms,
            job_nice=self.config.job_nice,
        )
        self.launcher = MemberLauncher(template, self.data_dir.log_dir)
        self._poller = Poller()
        self._poller.register(self.router)
        self._poller.register(self._monitor)
        self._poller.register(self.store_io.fd)
        self._poller.register(self.bulk_io.fd)
        self._signals = StopSignals(self._exit_now)
        self._poller.register(self._signals.fd)
        log.info("master %s (pid %d) listening on %s, data dir %s", self.uuid, os.getpid(), self.address,
                 self.data_dir.root)
        for slot in range(self.config.member_count):
            self._poller.register(self.launcher.spawn(slot).pidfd)
        self._wait_for_members()

    def _wait_for_members(self) -> None:
        deadline = time.monotonic() + MEMBER_START_TIMEOUT_S
        while len(self.membership) < self.config.member_count:
            if self._stopping:
                raise ClusterStartError(f"start interrupted: {self._stop_reason}")
            if time.monotonic() > deadline:
                raise ClusterStartError(
                    f"only {len(self.membership)} of {self.config.member_count} members joined "
                    f"in {MEMBER_START_TIMEOUT_S:.0f} s; see {self.data_dir.log_dir}"
                )
            self._poll_once()
        self._ready = True
        log.info("cluster ready: %d members", len(self.membership))
        self.coordinator.cluster_ready()
        if self._on_ready:
            self._on_ready(self.address)

    def _serve(self) -> None:
        while not self._stopping:
            self._poll_once()

    def request_stop(self, reason: str) -> None:
        if not self._stopping:
            log.info("stopping: %s", reason)
        self._stopping, self._stop_reason = True, reason

    def _shutdown(self) -> None:
        if self.router is not None:
            for record in self.membership.records():
                self.router.send(record.peer, p.Shutdown(self._stop_reason or "cluster stopping"))
        if self.launcher is not None:
            self.launcher.stop_all()
        if self.router is not None:
            self._wait_for_joined_members_to_hang_up(STOP_GRACE_S)
            self.router.close(linger_ms=SHUTDOWN_LINGER_MS)
        if self.store_service is not None:
            self.store_service.stop()
        self.store_io.stop(IO_STOP_TIMEOUT_S)  # job records and the structures log reach the disk first
        self.bulk_io.stop(IO_STOP_TIMEOUT_S)
        self.coordinator.store.close()
        self.data_dir.release()
        if self._signals is not None:
            self._signals.close()
        log.info("master stopped")

    def _wait_for_joined_members_to_hang_up(self, grace_s: float) -> None:
        """Keep the socket open until joined members told to shut down have closed their connections."""
        connections = {r.connection for r in self.membership.records() if not r.info.forked}
        deadline = time.monotonic() + grace_s
        while connections and time.monotonic() < deadline:
            if self._monitor.socket.poll(100):
                connections -= set(self._monitor.take_closed())

    # ------------------------------------------------------------------ the loop

    def _poll_once(self) -> None:
        ready_list = self._poller.poll(MAX_POLL_S)
        self.turns.begin()
        self._handle(ready_list)
        self.turns.end()

    def _handle(self, ready_list: list) -> None:
        for ready in ready_list:
            if ready is self.router:
                self._survive(self._drain_router)
            elif ready is self._monitor:
                # what a peer sent before it hung up comes first: its Goodbye wins over the disconnect
                self._survive(self._drain_router)
                self._survive(self._on_disconnects, self._monitor.take_closed())
            elif ready == self._signals.fd:
                self._on_signals()
            elif ready == self.store_io.fd:
                self._survive(self.store_io.drain)
            elif ready == self.bulk_io.fd:
                self._survive(self.bulk_io.drain)
            else:
                self._survive(self._on_child_exit, ready)
        if self._monitor.closed_pending:  # read while a hello looked up its connection
            self._survive(self._drain_router)
            self._survive(self._on_disconnects, self._monitor.take_closed())
        self._survive(self._tick, time.monotonic())

    def _survive(self, step, *args) -> None:
        """Run one step of the loop; an error in it is logged (at most once a minute per
        kind and place) and the master goes on: a full disk or a bug in one job's
        handling must not take the cluster's control plane down."""
        started = time.monotonic()
        try:
            step(*args)
            self.turns.step(getattr(step, "__name__", "step"), time.monotonic() - started)
        except ClusterStartError:
            raise
        except Exception as e:
            key = (type(e).__name__, getattr(step, "__name__", "step"))
            now = time.monotonic()
            if now - self._last_error_logged.get(key, -ERROR_LOG_INTERVAL_S) >= ERROR_LOG_INTERVAL_S:
                self._last_error_logged[key] = now
                log.exception("the master's %s failed (it goes on; the same error is logged at most once "
                              "a minute)", key[1].lstrip("_"))

    def _drain_router(self) -> None:
        while (incoming := self.router.recv()) is not None:
            handler = self.handlers.get(type(incoming.msg))
            if handler is None:
                log.warning("dropped %s from peer %s: not a request the master serves",
                            type(incoming.msg).__name__, incoming.peer.hex())
                continue
            started = time.monotonic()
            try:
                handler(incoming)
                self.turns.step(type(incoming.msg).__name__, time.monotonic() - started)
            except Exception as e:  # a bad request must never take the master down
                log.exception("handling %s failed", type(incoming.msg).__name__)
                self.router.send(incoming.peer, p.ErrorReply(type(e).__name__, str(e)), incoming.corr)

    def _tick(self, now: float) -> None:
        self.membership.expire(now)
        self.coordinator.tick(now)
        self.topology.tick(now)
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self._interval_s
            for record in self.membership.records():
                self.router.send(record.peer, p.Heartbeat(0))
        self._respawn_due(now)
        if now >= self._next_pid_check:
            self._next_pid_check = now + LOCAL_PID_CHECK_INTERVAL_S
            self._check_local_joined_members()

    # ------------------------------------------------------------------ detectors

    def _on_child_exit(self, pidfd: int) -> None:
        member = self.launcher.reap(pidfd)
        if member is None:
            return
        self._poller.unregister(pidfd)
        how = describe_exit(member.process.returncode)
        self.membership.remove(member.uuid, f"its process (pid {member.pid}) {how}")
        if not self._ready and not self._stopping:
            raise ClusterStartError(f"member pid {member.pid} {how} during start; see {member.log_path}")
        if not self._stopping and not member.asked_to_stop:
            now = time.monotonic()
            backoff = self.respawn.died(member.slot, now - member.started, member.joined, now, how)
            if backoff is not None:
                log.info("member slot %d: a replacement for member %s is forked in %.1f s", member.slot,
                         member.uuid, backoff)

    def _respawn_due(self, now: float) -> None:
        for slot in self.respawn.due(now):
            if not self._stopping:
                self._poller.register(self.launcher.spawn(slot).pidfd)

    def _on_disconnects(self, connections: list[int]) -> None:
        for connection in connections:
            record = self.membership.by_connection(connection)
            if record is not None:
                self.membership.remove(record.info.uuid, "its connection closed")

    def _check_local_joined_members(self) -> None:
        host = socket.gethostname()
        for record in self.membership.records():
            info = record.info
            if info.forked or info.host != host:
                continue
            try:
                gone = psutil.Process(info.pid).status() == psutil.STATUS_ZOMBIE
            except (psutil.NoSuchProcess, ValueError):  # ValueError: pid <= 0, from a peer that lied
                gone = True
            except psutil.AccessDenied:
                gone = False
            if gone:
                self.membership.remove(info.uuid, f"its process (pid {info.pid}) is gone")

    # ------------------------------------------------------------------ signals

    def _exit_now(self) -> None:
        """A second signal while stopping: the user insists. Kill the members, and exit."""
        if self._stopping:
            for member in self.launcher.members() if self.launcher else ():
                member.process.kill()
            os._exit(1)

    def _on_signals(self) -> None:
        name = self._signals.take()
        if name is not None:
            self.request_stop(f"received {name}")

    # ------------------------------------------------------------------ handlers

    def _on_hello(self, incoming: Incoming) -> None:
        hello: p.Hello = incoming.msg
        refusal = self.admission.refusal(hello, self._stopping)
        if refusal is not None:
            self.router.send(incoming.peer, p.Refused(refusal), incoming.corr)
            return
        now = time.monotonic()
        joining = hello.member_uuid not in self.membership and not (
            self.launcher is not None and self.launcher.forked(hello.member_uuid))
        if self.admission.defers(hello, joining, now):
            return  # no answer: it says hello again a heartbeat interval later
        info = p.MemberInfo(hello.member_uuid, hello.data_address, hello.pid, hello.host, hello.forked,
                            hello.curve_key)
        forked = self.launcher.by_uuid(hello.member_uuid) if self.launcher is not None else None
        if forked is not None:
            forked.joined = True
        self.membership.add(info, incoming.peer, self._monitor.connection_of(incoming.fd), now, hello.session)
        self.router.send(incoming.peer, p.Welcome(
            self.uuid, self.config.heartbeat_interval_ms, self.config.heartbeat_timeout_ms,
            self.membership.version, str(self.config.resolved_snapshot_dir.resolve()), self._store_id,
            self.store_service.port))

    def _member_of(self, incoming: Incoming):
        record = self.membership.by_peer(link_identity(incoming.peer))  # its link or its job channel
        if record is None:
            self.router.send(incoming.peer, p.Refused("unknown member: say Hello first"))
        else:
            record.last_seen = time.monotonic()
        return record

    def _on_heartbeat(self, incoming: Incoming) -> None:
        record = self._member_of(incoming)
        if record is not None:
            self.membership.heard_stall(record, incoming.msg.stalled_ms)

    def _from_member(self, handler):
        """A handler of a message only members send, called with the sender's uuid."""
        def handle(incoming: Incoming) -> None:
            record = self._member_of(incoming)
            if record is not None:
                self._bytes_from_members += incoming.size
                handler(record.info.uuid, incoming.msg)
        return handle

    def _send_to_member(self, uuid: str, msg) -> None:
        if isinstance(msg, p.Shutdown) and self.launcher is not None:
            forked = self.launcher.by_uuid(uuid)
            if forked is not None:  # told to go: no replacement when it does
                forked.asked_to_stop = True
        record = self.membership.get(uuid)
        sent = self.router.send(record.peer, msg) if record is not None else 0
        if not sent:
            log.warning("could not send %s to member %s", type(msg).__name__, uuid)
        self._bytes_to_members += sent
        self._largest_to_members = max(self._largest_to_members, sent)

    def _on_stats_request(self, incoming: Incoming) -> None:
        turns = self.turns
        self._reply(incoming, p.MasterStatsReply(
            turns.turns, turns.slow_turns, round(turns.longest_s * 1000, 1), turns.longest_step,
            self._bytes_from_members, self._bytes_to_members, self._largest_to_members,
            self.store_service.bytes_written, self.store_service.bytes_read))

    def _reply(self, incoming: Incoming, msg) -> None:
        self.router.send(incoming.peer, msg, incoming.corr)

    def _on_goodbye(self, incoming: Incoming) -> None:
        record = self._member_of(incoming)  # an unknown peer is refused, which ends its wait too
        if record is not None:
            self.membership.remove(record.info.uuid, f"it left: {incoming.msg.reason}")
            # to its link (the goodbye may come on its job channel): the member hangs up once it has this
            self.router.send(record.peer, p.GoodbyeAck())

    def _on_cluster_request(self, incoming: Incoming) -> None:
        now = time.monotonic()
        self.router.send(incoming.peer, p.ClusterReply(
            state="ACTIVE", version=__version__, cluster_name=self.config.cluster_name,
            master_pid=os.getpid(), master_host=socket.gethostname(), membership_version=self.membership.version,
            members=self.membership.infos(), stalled_ms=tuple(r.stalled_ms for r in self.membership.records()),
            restarts=tuple(self._restarts_of(r.info.uuid) for r in self.membership.records()),
            notes=self.respawn.notes(),
            heard_ms=tuple(round((now - r.last_seen) * 1000) for r in self.membership.records())), incoming.corr)

    def _restarts_of(self, uuid: str) -> int:
        """How many replacements were forked into the slot of this member (0: a joined member)."""
        forked = self.launcher.by_uuid(uuid) if self.launcher is not None else None
        return self.respawn.slots[forked.slot].restarts if forked is not None else 0

    def _on_stop_member(self, incoming: Incoming) -> None:
        uuid = incoming.msg.member_uuid
        if uuid not in self.membership:
            raise MemberNotFoundError(f"No member with uuid '{uuid}' in the cluster")
        self.topology.leave(uuid)
        self._reply(incoming, p.Ack())

    def _on_stop_request(self, incoming: Incoming) -> None:
        # the children this master forked, not what members claim (a Hello's pid is hearsay)
        pids = tuple(member.pid for member in self.launcher.members()) if self.launcher else ()
        self.router.send(incoming.peer, p.StopClusterReply(os.getpid(), pids), incoming.corr)
        self.request_stop("stop requested by a client")

