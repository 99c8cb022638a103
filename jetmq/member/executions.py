"""The executions a member runs, and their data connections to other members.

The master sends InitExecution (the member reads the state it owns from the snapshot
store, builds its tasklets and connects to its peers' data sockets), then
StartExecution once every member is ready; the member answers ExecutionInitialized
and, at the end, ExecutionFinished with a failure text or None. TerminateExecution
drops an execution at once. For snapshots, the member writes its state and the
exactly-once output they cover into the store itself (see member/snapshots.py).
"""
from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field

from jetmq import protocol as p
from jetmq import serialization
from jetmq.member.engine.dataplane import (CREDIT, HEADER, KIND_BATCH, KIND_BATCH_LZ4, KIND_CREDIT, KIND_PING,
                                           KIND_PONG, DataPlaneViolation)
from jetmq.member.engine.execution import Execution, ExecutionFailed, Plan, failure_text
from jetmq.ids import id_to_string
from jetmq.member import joblogs, metrics
from jetmq.member.snapshots import MemberSnapshots, StagedOutput
from jetmq.storage.snapshots import SnapshotDamagedError
from jetmq.transport import Poller
from jetmq.transport.data import ConnectionEvents, DataDealer, DataRouter
from jetmq.transport.security import ZapHandler

log = logging.getLogger(__name__)

#: How long a finished execution's connections may take to deliver their last frames.
DATA_LINGER_MS = 5000
#: How many completed executions a member remembers, to answer snapshots of them.
COMPLETED_MEMORY = 1000
#: How long a member waits for every peer of a new execution to answer its ping before it
#: reports the execution cannot start (a peer on an unreachable address).
REACH_TIMEOUT_S = 5.0
#: A data connection down this long (ZeroMQ reconnects by itself in between) makes the
#: execution stop, reported as its peer lost. Connections are not looked at on a timer:
#: their events wake the member (DataDealer.events), and a connection that went down sets
#: the check's deadline.
PEER_DOWN_TIMEOUT_S = 5.0
#: How long one execution's step may hold the member's loop before the loop turns
#: (reads its sockets, steps the other executions): a batch job beside a streaming one
#: delays the streaming job's items by about this much, not by a whole step of its own.
STEP_BUDGET_S = 0.001
#: How often the member looks for executions whose metrics report is due.
METRICS_CHECK_INTERVAL_S = 0.05


@dataclass
class RunningExecution:
    execution: Execution
    dealers: dict[int, DataDealer]  # member index -> outbound connection
    members: tuple = ()  # the execution's MemberInfos, by index
    started: bool = False
    identities: dict[int, bytes] = field(default_factory=dict)  # member index -> its dealer's identity
    staged: StagedOutput = field(default_factory=StagedOutput)  # exactly-once output not yet covered
    unreached: dict[int, object] = field(default_factory=dict)  # peers yet to answer a ping: index -> MemberInfo
    reach_deadline: float = 0.0
    metrics_interval_s: float = 0.0  # how often the execution's metrics go to the master (0: never)
    next_metrics: float = 0.0  # monotonic time the next report is due
    start_time: int = -1  # epoch ms it started here; when its part ended (-1: not yet)
    completion_time: int = -1


def dealer_identity(member_uuid: str, execution_id: int) -> bytes:
    return f"{member_uuid}:{execution_id}".encode()


class ExecutionService:
    def __init__(self, member_uuid: str, data_router: DataRouter, poller: Poller, send_to_master, services,
                 cluster_key=None, own_key=None):
        """``own_key``: this member's data key, with which it connects to its peers (None: a
        cluster without authentication); ``cluster_key`` reaches the master's store service."""
        self._uuid = member_uuid
        self._router = data_router
        self._poller = poller
        self._send_to_master = send_to_master
        self._services = services
        services.stage = self._stage
        self._own_key = own_key
        self.snapshots = MemberSnapshots(cluster_key)
        self._executions: dict[int, RunningExecution] = {}
        self._completed: deque[int] = deque(maxlen=COMPLETED_MEMORY)  # executions whose part here completed
        self._by_dealer: dict[DataDealer, int] = {}
        self._by_events: dict[ConnectionEvents, DataDealer] = {}
        self._next_metrics_check = 0.0

    # ------------------------------------------------------------------ from the master

    def on_message(self, msg) -> bool:
        """Handle an execution message from the master; False if it is not one."""
        if isinstance(msg, p.InitExecution):
            self._init(msg)
        elif isinstance(msg, p.StartExecution):
            running = self._executions.get(msg.execution_id)
            if running is not None:
                running.started = True
                running.start_time = metrics.now_ms()
                running.next_metrics = time.monotonic() + running.metrics_interval_s
        elif isinstance(msg, p.StartSnapshot):
            running = self._executions.get(msg.execution_id)
            if running is not None:
                running.execution.start_snapshot(msg.snapshot_id, msg.terminal)
            elif msg.execution_id in self._completed:  # our part completed: no state left to save
                self._send_to_master(p.SnapshotPhase1Done(msg.execution_id, msg.snapshot_id, None, None))
            else:  # gone already: the master must not wait for it
                self._send_to_master(p.SnapshotPhase1Done(msg.execution_id, msg.snapshot_id, "execution not running",
                                                          None))
        elif isinstance(msg, p.SnapshotPhase2):
            running = self._executions.get(msg.execution_id)
            if running is not None:
                if msg.success:
                    running.staged.committed(msg.snapshot_id)
                running.execution.commit_snapshot(msg.success)
        elif isinstance(msg, p.TerminateExecution):
            if msg.execution_id in self._executions:
                log.info("execution %s terminated: %s", id_to_string(msg.execution_id), msg.reason)
                self._final_metrics(msg.execution_id)
                self._remove(msg.execution_id)
            # answer also for an execution already gone, so the master never waits in vain
            self._send_to_master(p.ExecutionFinished(msg.execution_id, None, terminated=True, final_output=None))
        else:
            return False
        return True

    def _init(self, msg: p.InitExecution) -> None:
        joblogs.execution_initialising(msg)  # its lines name the job from now on
        try:
            dag = serialization.loads(msg.dag)
            plan = Plan(msg.job_id, msg.execution_id, msg.member_index, len(msg.members), msg.partition_owners,
                        msg.config.get("processing_guarantee", "NONE"), self._services, msg.restored_snapshot_id)
            restore = self.snapshots.restore(msg)
            if self._own_key is not None:  # its peers may connect to this member's data socket
                zap = ZapHandler.running()
                for member in msg.members:
                    zap.admit_member(member.curve_key.encode(), member.uuid)
            dealers = {index: DataDealer(member.address, dealer_identity(self._uuid, msg.execution_id),
                                         self._own_key, member.curve_key.encode())
                       for index, member in enumerate(msg.members) if index != msg.member_index}
            execution = Execution(plan, dag, send=lambda m, h, b: dealers[m].send(h, b),
                                  grant=lambda m, edge, n: self._grant(msg.execution_id, m, edge, n),
                                  restore=restore,
                                  on_phase1_done=lambda sid, entries: self._phase1_done(msg.execution_id, sid,
                                                                                        entries))
        except (ExecutionFailed, SnapshotDamagedError) as e:
            self._send_to_master(p.ExecutionInitialized(msg.execution_id, str(e)))
            return
        except Exception as e:
            log.exception("cannot initialise execution %s", id_to_string(msg.execution_id))
            self._send_to_master(p.ExecutionInitialized(msg.execution_id, failure_text("initialising the job", e)))
            return
        running = RunningExecution(execution, dealers, members=msg.members,
                                   metrics_interval_s=max(msg.metrics_interval_ms, 0) / 1000)
        running.identities = {index: dealer_identity(member.uuid, msg.execution_id)
                              for index, member in enumerate(msg.members) if index != msg.member_index}
        self._executions[msg.execution_id] = running
        for dealer in dealers.values():
            self._by_dealer[dealer] = msg.execution_id
            self._by_events[dealer.events] = dealer
            self._poller.register(dealer)
            self._poller.register(dealer.events)
        try:
            execution.init()
        except ExecutionFailed as e:
            self._finish(msg.execution_id, str(e), initialized=False)
            return
        # initialised once every peer's data socket answers: a peer we cannot reach must not
        # leave the job RUNNING without progress
        running.unreached = {index: member for index, member in enumerate(msg.members) if index != msg.member_index}
        running.reach_deadline = time.monotonic() + REACH_TIMEOUT_S
        for index, dealer in dealers.items():
            dealer.send(HEADER.pack(KIND_PING, msg.execution_id, 0, msg.member_index, 0), b"")
        self._maybe_reached(msg.execution_id, running)

    def _maybe_reached(self, execution_id: int, running: RunningExecution) -> None:
        if not running.unreached:
            running.reach_deadline = 0.0
            self._send_to_master(p.ExecutionInitialized(execution_id, None))

    def next_peer_check(self) -> float | None:
        """When check_peers() next has work (a monotonic time): a new execution's deadline
        for its peers' answers, or a data connection's for coming back up; None: none waits."""
        due = None
        for running in self._executions.values():
            if running.reach_deadline and running.unreached:
                due = running.reach_deadline if due is None else min(due, running.reach_deadline)
            for dealer in running.dealers.values():
                if dealer.down_since is not None:
                    back_by = dealer.down_since + PEER_DOWN_TIMEOUT_S
                    due = back_by if due is None else min(due, back_by)
        return due

    def check_peers(self, now: float) -> None:
        """Report (and drop) executions whose peers did not all answer in time at the start,
        or whose data connection to a peer stayed down: nothing waits on a peer silently."""
        due = self.next_peer_check()
        if due is None or now < due:
            return
        for execution_id, running in list(self._executions.items()):
            lost = None
            if running.reach_deadline and now >= running.reach_deadline and running.unreached:
                member = next(iter(running.unreached.values()))
                lost = (member, f"member {member.uuid} at {member.address} did not answer within "
                                f"{REACH_TIMEOUT_S:.0f} s (is the address reachable from this host? see jet-start "
                                f"--advertise)")
            for index, dealer in running.dealers.items():
                dealer.watch(now)
                if lost is None and dealer.down_since is not None and now - dealer.down_since >= PEER_DOWN_TIMEOUT_S:
                    member = running.members[index]
                    lost = (member, f"the data connection to member {member.uuid} at {member.address} has been "
                                    f"down for {now - dealer.down_since:.0f} s")
            if lost is not None:
                member, reason = lost
                log.warning("execution %s stops: %s", id_to_string(execution_id), reason)
                self._remove(execution_id)
                self._send_to_master(p.PeerUnreachable(execution_id, member.uuid, member.address, reason))

    def _phase1_done(self, execution_id: int, snapshot_id: int, entries: dict[str, list]) -> None:
        """Write this member's state, and the output the snapshot covers, into the snapshot
        store; then report phase 1 done with the files' names, sizes and checksums."""
        running = self._executions.get(execution_id)
        if running is None:
            return
        plan = running.execution.plan
        try:
            files = self.snapshots.write(plan.job_id, snapshot_id, plan.member_index, entries,
                                         running.staged.up_to(snapshot_id))
        except OSError as e:
            log.warning("execution %s: cannot write snapshot %d: %s", id_to_string(execution_id), snapshot_id, e)
            self._send_to_master(p.SnapshotPhase1Done(execution_id, snapshot_id,
                                                      f"member {self._uuid} cannot write it: {e.strerror or e}", None))
            return
        self._send_to_master(p.SnapshotPhase1Done(execution_id, snapshot_id, None, files))

    def _stage(self, execution_id: int, epoch: int, kind: str, name: str, data: bytes) -> None:
        """A sink's exactly-once output, kept here until a committed snapshot covers it."""
        running = self._executions.get(execution_id)
        if running is not None:
            running.staged.add(epoch, kind, name, data)

    # ------------------------------------------------------------------ data plane

    def _grant(self, execution_id: int, member: int, edge_index: int, count: int) -> bool:
        """Send ``count`` credits to ``member``'s sender of ``edge_index``; False if the
        connection refused them (its queue full, or the member gone)."""
        running = self._executions.get(execution_id)
        if running is None:
            return True  # the execution is over: nobody is owed anything
        header = HEADER.pack(KIND_CREDIT, execution_id, edge_index, running.execution.plan.member_index, 0)
        return self._router.send(running.identities[member], header, CREDIT.pack(count))

    def on_data(self) -> None:
        """Drain the member's data socket: batches for receivers. A batch is taken only from
        the connection of the member it says it comes from; a member that breaks the flow
        control fails the execution."""
        while (received := self._router.recv()) is not None:
            peer, header, payload, peer_key = received
            try:
                kind, execution_id, edge_index, member, count = HEADER.unpack(header)
            except Exception:
                log.warning("dropped a data frame with a malformed header")
                continue
            if kind == KIND_PING:  # answered whether or not this member knows the execution yet
                self._router.send(peer, HEADER.pack(KIND_PONG, execution_id, 0, 0, 0), b"")
                continue
            running = self._executions.get(execution_id)
            if running is None or kind not in (KIND_BATCH, KIND_BATCH_LZ4):
                continue
            if running.identities.get(member) != peer or (
                    peer_key is not None and 0 <= member < len(running.members)
                    and running.members[member].curve_key.encode() != peer_key):
                log.warning("dropped a batch of execution %s that claims to come from member %d on another "
                            "member's connection", id_to_string(execution_id), member)
                continue
            try:
                running.execution.on_batch(edge_index, member, kind, count, payload)
            except DataPlaneViolation as e:
                self._finish(execution_id, f"member {member} broke the data plane's flow control: {e}")

    def on_ready(self, ready: DataDealer | ConnectionEvents) -> None:
        """One of the executions' outbound connections is readable: its credits, or its
        connection's events."""
        if type(ready) is ConnectionEvents:
            ready.dealer.watch(time.monotonic())
        else:
            self._on_credits(ready)

    def _on_credits(self, dealer: DataDealer) -> None:
        """Drain an outbound connection: credits from the receiving member."""
        while (received := dealer.recv()) is not None:
            header, payload = received
            try:
                kind, execution_id, edge_index, member, _ = HEADER.unpack(header)
                (count,) = CREDIT.unpack(payload) if kind == KIND_CREDIT else (0,)
            except Exception:
                log.warning("dropped a credit frame with a malformed header")
                continue
            running = self._executions.get(execution_id)
            if running is None:
                continue
            if kind == KIND_CREDIT:
                running.execution.on_credit(edge_index, member, count)
            elif kind == KIND_PONG and running.unreached:
                index = next((i for i, d in running.dealers.items() if d is dealer), None)
                if running.unreached.pop(index, None) is not None:
                    self._maybe_reached(execution_id, running)

    def owns(self, obj) -> bool:
        return obj in self._by_dealer or obj in self._by_events

    # ------------------------------------------------------------------ running

    def step(self) -> bool:
        """One step of every started execution; True if any made progress."""
        progress = False
        for execution_id, running in list(self._executions.items()):
            if not running.started:
                continue
            try:
                progress |= running.execution.step(time.perf_counter() + STEP_BUDGET_S)
            except ExecutionFailed as e:
                self._finish(execution_id, str(e))
                continue
            if running.execution.is_done:
                self._finish(execution_id, None)
        return progress

    def next_deadline(self) -> float | None:
        """After a step in which nothing moved: the earliest monotonic time an execution
        needs the loop although nothing arrives (a source's next item, a watermark, a
        metrics report); None: only messages and data wake it."""
        earliest = None
        for execution_id, running in list(self._executions.items()):
            if not running.started:
                continue
            try:
                deadline = running.execution.next_deadline()
            except ExecutionFailed as e:
                self._finish(execution_id, str(e))
                return time.monotonic()  # step again at once
            if running.metrics_interval_s:
                due = max(running.next_metrics, self._next_metrics_check)
                deadline = due if deadline is None else min(deadline, due)
            if deadline is not None and (earliest is None or deadline < earliest):
                earliest = deadline
        return earliest

    def _finish(self, execution_id: int, failure: str | None, initialized: bool = True) -> None:
        if initialized:
            self._final_metrics(execution_id)
        final_output = None
        if failure is None:
            running = self._executions[execution_id]
            plan = running.execution.plan
            try:
                final_output = self.snapshots.write_final_output(plan.job_id, execution_id, plan.member_index,
                                                                 running.staged.all())
            except OSError as e:
                failure = f"member {self._uuid} cannot write its exactly-once output: {e.strerror or e}"
        if failure is not None:
            log.warning("execution %s failed: %s", id_to_string(execution_id), failure)
        self._remove(execution_id, linger_ms=DATA_LINGER_MS if failure is None else 0)
        if failure is None:
            self._completed.append(execution_id)
        if initialized:
            self._send_to_master(p.ExecutionFinished(execution_id, failure, terminated=False,
                                                     final_output=final_output))
        else:
            self._send_to_master(p.ExecutionInitialized(execution_id, failure))

    def _remove(self, execution_id: int, linger_ms: int = 0) -> None:
        running = self._executions.pop(execution_id)
        running.execution.close()
        for dealer in running.dealers.values():
            self._poller.unregister(dealer)
            self._poller.unregister(dealer.events)
            del self._by_dealer[dealer]
            del self._by_events[dealer.events]
            dealer.close(linger_ms)

    # ------------------------------------------------------------------ metrics

    def report_metrics(self, now: float) -> None:
        """Send the master the metrics of every started execution whose report is due."""
        if now < self._next_metrics_check:
            return
        self._next_metrics_check = now + METRICS_CHECK_INTERVAL_S
        for execution_id, running in self._executions.items():
            if running.started and running.metrics_interval_s and now >= running.next_metrics:
                running.next_metrics = now + running.metrics_interval_s
                self._send_metrics(execution_id, running)

    def _final_metrics(self, execution_id: int) -> None:
        """The execution's part here ends: its last metrics, sent before ExecutionFinished."""
        running = self._executions.get(execution_id)
        if running is not None and running.started and running.metrics_interval_s:
            running.completion_time = metrics.now_ms()
            self._send_metrics(execution_id, running)

    def _send_metrics(self, execution_id: int, running: RunningExecution) -> None:
        try:
            data = metrics.report(running.execution, self._uuid, [m.address for m in running.members],
                                  running.start_time, running.completion_time)
        except Exception:  # metrics must never stop a job
            log.exception("cannot collect the metrics of execution %s", id_to_string(execution_id))
            return
        self._send_to_master(p.ExecutionMetrics(execution_id, data))

    def describe(self) -> str:
        """Every execution's tasklets and queues, for diagnostics."""
        lines = []
        for execution_id, running in self._executions.items():
            lines.append(f"execution {execution_id} started={running.started}")
            lines += [f"  {tasklet!r}" for tasklet in running.execution.tasklets]
        return "\n".join(lines) or "no executions"

    def close(self) -> None:
        for execution_id in list(self._executions):
            self._remove(execution_id)
