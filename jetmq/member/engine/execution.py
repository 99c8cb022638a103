"""One member's part of a job execution: its processors, queues and tasklets.

Built from the DAG (unpickled on the member: the master never loads user code) and
the master's plan (members, this member's index, the partition owners). Every
member derives its tasklets the same way, so senders and receivers pair up.

Queues, per edge (source vertex V with lpV local processors, destination W with lpW):
- local: each local V processor has one queue into each local W processor;
- distributed, in addition: each local V processor has one queue into a sender
  tasklet per other member, and each local W processor one queue from a receiver
  tasklet per other member.
"""
from __future__ import annotations

import logging
import operator
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Iterator

from jetmq.core.dag import DAG, Edge, RoutingPolicy
from jetmq import serialization
from jetmq.core.metrics_context import CURRENT
from jetmq.core.partition import PARTITION_COUNT, local_processor_table, processor_partitions
from jetmq.core.snapshot import SnapshotContext
from jetmq.core.processor import ProcessorContext, Progress
from jetmq.member.engine.dataplane import ReceiverTasklet, SenderTasklet
from jetmq.member.engine.queues import BatchQueue, InputStream
from jetmq.member.engine.routing import OutboundEdge, group_by_partition
from jetmq.member.engine.tasklet import ProcessorTasklet, SnapshotRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """What the master decided for this execution, as this member needs it."""

    job_id: int
    execution_id: int
    member_index: int
    member_count: int
    partition_owners: tuple[int, ...]  # member index owning each partition
    processing_guarantee: str = "NONE"
    services: object = None  # the member's ClusterServices, given to every processor
    restored_snapshot_id: int = -1  # the snapshot the processors' state comes from, if any

    @property
    def aligns_barriers(self) -> bool:
        return self.processing_guarantee == "EXACTLY_ONCE"

    def owned_partitions(self) -> list[int]:
        return [p for p, owner in enumerate(self.partition_owners) if owner == self.member_index]


class ExecutionFailed(Exception):
    """A processor (or its supplier) raised: the text names the vertex and the exception."""


def failure_text(where: str, error: BaseException) -> str:
    return f"Exception in {where}: {type(error).__name__}: {error}"


class Execution:
    """Tasklets of one execution on this member; ``step()`` runs each once."""

    def __init__(self, plan: Plan, dag: DAG, send: Callable[[int, bytes, bytes], bool] | None = None,
                 grant: Callable[[int, int, int], bool] | None = None,
                 restore: dict[str, list[tuple[int, bytes, bytes]]] | None = None,
                 on_phase1_done: Callable[[int, dict[str, list]], None] | None = None):
        """``send(member, header, payload)`` and ``grant(member, edge, count)`` reach other
        members; ``restore`` holds each vertex's (partition, key, value) snapshot entries
        for this member; ``on_phase1_done(snapshot_id, entries by vertex)`` is called when
        every processor here has saved its state for a snapshot."""
        self.plan = plan
        self.dag = dag
        self._send = send
        self._grant = grant
        self._restore = restore or {}
        self._on_phase1_done = on_phase1_done or (lambda snapshot_id, entries: None)
        self.snapshot_request = SnapshotRequest()
        self._snapshot_waiting: set[ProcessorTasklet] = set()  # tasklets that owe the current snapshot
        self._snapshot_entries: dict[str, list[tuple[int, bytes, bytes]]] = {}
        self._phase1_reported = -1  # the last snapshot this member reported done
        # (last snapshot it saved itself, vertex, entry groups) of each completed processor
        # with state_after_complete(): it stands for it in every later snapshot
        self._carried: list[tuple[int, str, list]] = []
        self.processor_tasklets: list[ProcessorTasklet] = []
        #: vertex -> (state entries, bytes) this member saved of it in the last snapshot (a metric)
        self.snapshot_sizes: dict[str, tuple[int, int]] = {}
        self.senders: dict[tuple[int, int], SenderTasklet] = {}  # (edge, member) ->
        self.receivers: dict[tuple[int, int], ReceiverTasklet] = {}  # (edge, member) ->
        self._build()
        self._restore = {}  # the tasklets hold what they restore now (and drop it as they go)
        # in the order data flows (receivers, processors in topological order, senders), so
        # that one step of the loop carries a batch through this member: a consumer runs
        # after its producer in the same step, not in the next
        self.tasklets: list = [*self.receivers.values(), *self.processor_tasklets, *self.senders.values()]
        self._resume_at = None  # the tasklet a step cut short by its budget goes on at
        self.failure: str | None = None

    # ------------------------------------------------------------------ building

    def _build(self) -> None:
        plan, dag = self.plan, self.dag
        if plan.member_count > 1 and (self._send is None or self._grant is None):
            raise ValueError("a multi-member execution needs a data plane")
        self._remote = [m for m in range(plan.member_count) if m != plan.member_index]
        owned = plan.owned_partitions()
        edges = dag.edges()
        # (vertex, local index) -> input ordinal -> the queues feeding it
        inputs: dict[tuple[str, int], dict[int, list[BatchQueue]]] = {}
        # (vertex, local index) -> output ordinal -> where its batches go
        outputs: dict[tuple[str, int], dict[int, OutboundEdge]] = {}
        for edge_index, edge in enumerate(edges):
            self._wire_edge(edge_index, edge, owned, inputs, outputs)
        for vertex in dag.vertices():
            lp = vertex.local_parallelism
            for local_index in range(lp):
                key = (vertex.name, local_index)
                context = ProcessorContext(
                    vertex_name=vertex.name,
                    global_index=plan.member_index * lp + local_index,
                    local_index=local_index,
                    total_parallelism=plan.member_count * lp,
                    local_parallelism=lp,
                    member_index=plan.member_index,
                    member_count=plan.member_count,
                    job_id=plan.job_id,
                    execution_id=plan.execution_id,
                    processing_guarantee=plan.processing_guarantee,
                    logger=logging.getLogger(f"jetmq.job.{vertex.name}"),
                    owned_partitions=processor_partitions(owned, lp, local_index) if owned else frozenset(),
                    services=plan.services,
                    snapshot_context=SnapshotContext(plan.processing_guarantee, plan.restored_snapshot_id,
                                                     plan.restored_snapshot_id),
                )
                try:
                    CURRENT.context = None  # no processor runs: a user metric counts for none
                    processor = vertex.processor_supplier()
                except Exception as e:
                    raise ExecutionFailed(failure_text(f"the processor supplier of vertex '{vertex.name}'", e)) from e
                streams = [InputStream(ordinal, self._priority(vertex.name, ordinal), queues, plan.aligns_barriers)
                           for ordinal, queues in sorted(inputs.get(key, {}).items())]
                outs = outputs.get(key, {})
                self.processor_tasklets.append(ProcessorTasklet(
                    processor, context, streams, [outs[o] for o in sorted(outs)],
                    snapshot_request=self.snapshot_request,
                    on_snapshot_entries=lambda entries, name=vertex.name: self._collect(name, entries),
                    on_snapshot_done=self._snapshot_done,
                    restored_batches=self._restored_batches(vertex.name, owned, lp, local_index)))

    def _restored_batches(self, vertex: str, owned: list[int], lp: int, local_index: int) -> Iterator[list] | None:
        """The (key, value) state entries for one processor, broadcast ones and keyed ones
        whose partition this processor handles, as lists unpickled one group at a time when
        the tasklet asks (unpickling millions of entries here would stop the member's loop
        for seconds); None when there are none."""
        groups = self._restore.get(vertex)
        if not groups:
            return None
        table = local_processor_table(owned, lp) if owned else [p % lp for p in range(PARTITION_COUNT)]
        blobs = [blob for partition, blob, _count in groups if partition < 0 or table[partition] == local_index]
        return _unpickled(blobs) if blobs else None

    def _priority(self, vertex: str, ordinal: int) -> int:
        for edge in self.dag.inbound_edges(vertex):
            if edge.dest_ordinal == ordinal:
                return edge.priority
        return 0

    def _wire_edge(self, edge_index: int, edge: Edge, owned: list[int], inputs, outputs) -> None:
        plan = self.plan
        source_lp = self.dag.get_vertex(edge.source_name).local_parallelism
        dest_lp = self.dag.get_vertex(edge.dest_name).local_parallelism
        distributed = edge.is_distributed and plan.member_count > 1
        capacity = edge.queue_size
        # the consumer side: queues into each local destination processor
        local_queues = [[BatchQueue(capacity, f"{edge.label()} {i}->{j}") for j in range(dest_lp)]
                        for i in range(source_lp)]
        for j in range(dest_lp):
            slot = inputs.setdefault((edge.dest_name, j), {}).setdefault(edge.dest_ordinal, [])
            slot.extend(local_queues[i][j] for i in range(source_lp))
        local_table = local_processor_table(owned if distributed else range(PARTITION_COUNT), dest_lp)
        if distributed:
            sender_queues = {m: [BatchQueue(capacity, f"{edge.label()} {i}->member {m}") for i in range(source_lp)]
                             for m in self._remote}
            for m in self._remote:
                stream = InputStream(0, 0, sender_queues[m], plan.aligns_barriers)
                self.senders[(edge_index, m)] = SenderTasklet(
                    f"{edge.label()} to member {m}", stream, plan.execution_id, edge_index, plan.member_index,
                    lambda header, payload, m=m: self._send(m, header, payload))
                receiver_targets = []
                for j in range(dest_lp):
                    queue = BatchQueue(capacity, f"{edge.label()} member {m}->{j}")
                    inputs[(edge.dest_name, j)][edge.dest_ordinal].append(queue)
                    receiver_targets.append(queue)
                self.receivers[(edge_index, m)] = ReceiverTasklet(
                    f"{edge.label()} from member {m}",
                    self._routed(edge, receiver_targets, local_table),
                    lambda count, m=m: self._grant(m, edge_index, count))
        for i in range(source_lp):
            targets = list(local_queues[i])
            if distributed:
                targets += [sender_queues[m][i] for m in self._remote]
            outputs.setdefault((edge.source_name, i), {})[edge.source_ordinal] = self._routed(
                edge, targets, local_table, distributed)

    def _routed(self, edge: Edge, targets: list[BatchQueue], local_table: list[int],
                distributed: bool = False) -> OutboundEdge:
        """An OutboundEdge over ``targets``: the local destination processors, then (if
        ``distributed``) one sender queue per other member, in self._remote order."""
        dest_lp = len(targets) - (len(self._remote) if distributed else 0)
        if edge.routing in (RoutingPolicy.PARTITIONED, RoutingPolicy.ALL_TO_ONE):
            table = [self._target_of(p, local_table, dest_lp, distributed) for p in range(PARTITION_COUNT)]
            if edge.routing is RoutingPolicy.ALL_TO_ONE:
                return OutboundEdge(targets, edge.routing, single_target=table[edge.all_to_one_partition])
            return OutboundEdge(targets, edge.routing, key_fn=edge.key_fn, partition_targets=table)
        return OutboundEdge(targets, edge.routing)

    def _target_of(self, partition: int, local_table: list[int], dest_lp: int, distributed: bool) -> int:
        owner = self.plan.partition_owners[partition]
        if not distributed or owner == self.plan.member_index:
            return local_table[partition]
        return dest_lp + self._remote.index(owner)

    # ------------------------------------------------------------------ running

    def init(self) -> None:
        for tasklet in self.processor_tasklets:
            try:
                tasklet.init()
            except Exception as e:
                raise ExecutionFailed(failure_text(tasklet.where, e)) from e
            finally:
                CURRENT.context = None

    def on_batch(self, edge_index: int, member: int, kind: int, count: int, payload: bytes) -> None:
        """A batch of ``count`` items from another member; DataPlaneViolation if it broke the rules."""
        receiver = self.receivers.get((edge_index, member))
        if receiver is None:
            log.warning("dropped a batch for unknown edge %d from member %d", edge_index, member,
                        extra={"job_id": self.plan.job_id})
        else:
            receiver.enqueue(kind, count, payload)

    def on_credit(self, edge_index: int, member: int, count: int) -> None:
        sender = self.senders.get((edge_index, member))
        if sender is not None:
            sender.add_credits(count)

    # ------------------------------------------------------------------ snapshots

    def start_snapshot(self, snapshot_id: int, terminal: bool) -> None:
        """Phase 1 of snapshot ``snapshot_id``: sources (and processors whose inputs have
        ended) save state and emit the barrier; the others follow the barrier."""
        request = self.snapshot_request
        request.snapshot_id, request.terminal = snapshot_id, terminal
        # the barrier may have overtaken the master's request (data and control travel
        # apart): a tasklet that has taken this snapshot already owes nothing
        self._snapshot_waiting = {t for t in self.processor_tasklets
                                  if t in self.tasklets and t.last_snapshot_id < snapshot_id}
        self._maybe_phase1_done(snapshot_id)

    def _collect(self, vertex: str, entries: list) -> None:
        self._snapshot_entries.setdefault(vertex, []).extend(_grouped(entries))

    def _carry(self, tasklet: ProcessorTasklet) -> None:
        """Keep a completed processor's state_after_complete() for later snapshots
        (serialized now, once)."""
        entries = tasklet.processor.state_after_complete()
        if entries:
            self._carried.append((tasklet.last_snapshot_id, tasklet.context.vertex_name, _grouped(entries)))

    def _snapshot_done(self, tasklet: ProcessorTasklet, snapshot_id: int) -> None:
        if snapshot_id == self.snapshot_request.snapshot_id:  # else start_snapshot() will see it
            self._snapshot_waiting.discard(tasklet)
            self._maybe_phase1_done(snapshot_id)

    def _maybe_phase1_done(self, snapshot_id: int) -> None:
        if not self._snapshot_waiting and snapshot_id > self._phase1_reported:
            self._phase1_reported = snapshot_id
            entries, self._snapshot_entries = self._snapshot_entries, {}
            for saved_up_to, vertex, groups in self._carried:
                if saved_up_to < snapshot_id:
                    entries.setdefault(vertex, []).extend(groups)
            self.snapshot_sizes = {vertex: (sum(g[2] for g in groups), sum(len(g[1]) for g in groups))
                                   for vertex, groups in entries.items()}
            self._on_phase1_done(snapshot_id, entries)

    def commit_snapshot(self, success: bool) -> None:
        """Phase 2: every live processor learns whether the snapshot was committed."""
        for tasklet in self.processor_tasklets:
            if tasklet in self.tasklets:
                tasklet.commit(success)

    @property
    def is_done(self) -> bool:
        return not self.tasklets

    def step(self, until: float | None = None) -> bool:
        """Run every live tasklet once; or, with ``until`` (a ``time.perf_counter()``
        time), stop after the first call that ends past it: the next step goes on at the
        next tasklet. No execution so holds the member's loop, and the other executions'
        items, longer than its budget and one tasklet call. True if any made progress (a
        step cut short counts: the tasklets not called may have work). Raises
        ExecutionFailed."""
        tasklets = self.tasklets
        count = len(tasklets)
        start = 0
        if self._resume_at is not None:
            start = tasklets.index(self._resume_at) if self._resume_at in tasklets else 0
            self._resume_at = None
        progress = False
        finished = []
        for offset in range(count):
            tasklet = tasklets[(start + offset) % count]
            try:
                result = tasklet.call()
                if result is Progress.DONE and type(tasklet) is ProcessorTasklet:
                    self._carry(tasklet)
            except Exception as e:
                where = getattr(tasklet, "where", repr(tasklet))
                log.error("%s failed:\n%s", where, traceback.format_exc(), extra={"job_id": self.plan.job_id})
                raise ExecutionFailed(failure_text(where, e)) from e
            if result is Progress.DONE:
                finished.append(tasklet)
                progress = True
            elif result is Progress.MADE_PROGRESS:
                progress = True
            if until is not None and offset < count - 1 and time.perf_counter() >= until:
                self._resume_at = tasklets[(start + offset + 1) % count]
                progress = True
                break
        CURRENT.context = None
        for tasklet in finished:
            tasklets.remove(tasklet)
            if tasklet in self._snapshot_waiting:  # a finished processor has no state left to save
                self._snapshot_done(tasklet, self.snapshot_request.snapshot_id)
        return progress

    def next_deadline(self) -> float | None:
        """After a step in which nothing moved: the earliest time a tasklet needs a call
        although no message, batch or credit arrives (None: only those wake it)."""
        earliest = None
        try:
            for tasklet in self.tasklets:
                CURRENT.context = getattr(tasklet, "context", None)
                deadline = tasklet.wake_at()
                if deadline is not None and (earliest is None or deadline < earliest):
                    earliest = deadline
        except Exception as e:
            where = getattr(tasklet, "where", repr(tasklet))
            log.error("%s failed:\n%s", where, traceback.format_exc(), extra={"job_id": self.plan.job_id})
            raise ExecutionFailed(failure_text(where, e)) from e
        finally:
            CURRENT.context = None
        return earliest

    def close(self) -> None:
        for tasklet in self.processor_tasklets:
            if tasklet.context.metrics:
                log.info("metrics of %s: %s", tasklet.where, tasklet.context.metrics,
                         extra={"job_id": self.plan.job_id})
            try:
                tasklet.close()
            except Exception:
                log.exception("closing %s failed", tasklet.where, extra={"job_id": self.plan.job_id})
        CURRENT.context = None


def _grouped(entries: list) -> list[tuple[int, bytes, int]]:
    """State entries serialized at once (the processor may change its state right
    after), grouped by partition: (partition, pickled (keys, values), count), so that a
    restore reads only the partitions a member owns, unpickling nothing else. Keys and
    values are pickled as two lists: a list of pairs costs pickle a memo entry per pair
    (four times slower for a counter's int keys and values)."""
    dumps = serialization.dumps
    return [(partition, dumps((list(map(_key_of, group)), list(map(_value_of, group)))), len(group))
            for partition, group in group_by_partition(entries).items()]


_key_of = operator.itemgetter(0)
_value_of = operator.itemgetter(1)


def _unpickled(blobs: list[bytes]) -> Iterator[list]:
    """Each pickled (keys, values) group as a list of (key, value) entries, in turn."""
    for blob in blobs:
        keys, values = serialization.loads(blob)
        yield list(zip(keys, values))
