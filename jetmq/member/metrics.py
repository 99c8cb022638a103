"""A member's metrics of one execution, as the report it sends the master.

The tasklets count as they go, per batch (member/engine/tasklet.py, dataplane.py);
this module reads their counters, the queues and the processors' own metrics once per
metrics collection interval, and encodes them with their Jet tags
(jetmq/core/metrics_context.py describes the report, docs/operations.md the metrics).
Nothing here runs per item.
"""
from __future__ import annotations

import time

from jetmq.core.metrics import MetricNames as N, MetricTags as T
from jetmq.core.metrics_context import Metric, encode_report
from jetmq.ids import id_to_string
from jetmq.member.engine.execution import Execution
from jetmq.member.engine.queues import ENDED, NO_WATERMARK

#: What a watermark metric shows while there is no watermark: Jet's Long.MIN_VALUE.
NO_VALUE = -(1 << 63)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _wm(value: int) -> int:
    return NO_VALUE if value <= NO_WATERMARK or value >= ENDED else value


def _processor_entries(tasklet, snapshots: bool, now: int) -> list:
    entries = []
    streams = tasklet.input_streams
    for stream in streams:
        ordinal = {T.ORDINAL: str(stream.ordinal)}
        entries += [[N.RECEIVED_COUNT, "count", tasklet.received_counts[stream.ordinal], ordinal],
                    [N.RECEIVED_BATCHES, "count", tasklet.received_batches[stream.ordinal], ordinal],
                    [N.TOP_OBSERVED_WM, "ms", _wm(stream.top_watermark), ordinal],
                    [N.COALESCED_WM, "ms", _wm(stream.watermark), ordinal]]
    emitted = tasklet.emitted_counts
    for ordinal in range(len(emitted) - 1):
        entries.append([N.EMITTED_COUNT, "count", emitted[ordinal], {T.ORDINAL: str(ordinal)}])
    if snapshots:
        entries.append([N.EMITTED_COUNT, "count", emitted[-1], {T.ORDINAL: "snapshot"}])
    top = max((s.top_watermark for s in streams), default=NO_WATERMARK)
    forwarded = _wm(tasklet.last_forwarded_wm)
    queues = [q for s in streams for q in s.queues]
    entries += [[N.TOP_OBSERVED_WM, "ms", _wm(top), None],
                [N.COALESCED_WM, "ms", _wm(tasklet.coalesced_watermark), None],
                [N.LAST_FORWARDED_WM, "ms", forwarded, None],
                [N.LAST_FORWARDED_WM_LATENCY, "ms", NO_VALUE if forwarded == NO_VALUE else now - forwarded, None],
                [N.QUEUES_SIZE, "count", sum(q.size for q in queues), None],
                [N.QUEUES_CAPACITY, "count", sum(q.capacity for q in queues), None]]
    for name, value in list(tasklet.context.metrics.items()):
        if type(value) is Metric:
            entries.append([name, value.unit.value, value.value, {T.USER: "true"}])
        elif type(value) in (int, float):
            entries.append([name, "count", value, None])
    return entries


def report(execution: Execution, member_uuid: str, addresses: list[str], start_time: int,
           completion_time: int) -> bytes:
    """This member's measurements of ``execution`` now; ``addresses``: the data address of
    each member of the execution, by index; times in epoch ms (-1: not yet)."""
    plan, dag = execution.plan, execution.dag
    now = now_ms()
    common = {T.MODULE: "jet", T.JOB: id_to_string(plan.job_id), T.EXECUTION: id_to_string(plan.execution_id),
              T.MEMBER: member_uuid, T.ADDRESS: addresses[plan.member_index]}
    groups: list = [[{}, [[N.EXECUTION_START_TIME, "ms", start_time, None],
                          [N.EXECUTION_COMPLETION_TIME, "ms", completion_time, None]]]]
    snapshots = plan.processing_guarantee != "NONE"
    roles: dict[str, dict[str, str]] = {}
    for vertex in dag.vertices():
        tags = roles[vertex.name] = {}
        if not dag.inbound_edges(vertex.name):
            tags[T.SOURCE] = "true"
        if not dag.outbound_edges(vertex.name):
            tags[T.SINK] = "true"
        if snapshots:
            keys, size = execution.snapshot_sizes.get(vertex.name, (0, 0))
            groups.append([{T.VERTEX: vertex.name}, [[N.SNAPSHOT_KEYS, "count", keys, None],
                                                     [N.SNAPSHOT_BYTES, "bytes", size, None]]])
    for tasklet in execution.processor_tasklets:
        context = tasklet.context
        tags = {T.VERTEX: context.vertex_name, T.PROCESSOR: str(context.global_index),
                T.PROCESSOR_TYPE: type(tasklet.processor).__name__, **roles[context.vertex_name]}
        groups.append([tags, _processor_entries(tasklet, snapshots, now)])
    edges = dag.edges()
    for (edge_index, member), sender in execution.senders.items():
        edge = edges[edge_index]  # out of the vertex that sends, on its output ordinal
        groups.append([{T.VERTEX: edge.source_name, T.ORDINAL: str(edge.source_ordinal),
                        T.DESTINATION_ADDRESS: addresses[member]},
                       [[N.DISTRIBUTED_ITEMS_OUT, "count", sender.items_out, None],
                        [N.DISTRIBUTED_BYTES_OUT, "bytes", sender.bytes_out, None]]])
    for (edge_index, member), receiver in execution.receivers.items():
        edge = edges[edge_index]  # into the vertex that receives, on its input ordinal
        groups.append([{T.VERTEX: edge.dest_name, T.ORDINAL: str(edge.dest_ordinal),
                        T.SOURCE_ADDRESS: addresses[member]},
                       [[N.DISTRIBUTED_ITEMS_IN, "count", receiver.items_in, None],
                        [N.DISTRIBUTED_BYTES_IN, "bytes", receiver.bytes_in, None]]])
    return encode_report(now, common, groups)
