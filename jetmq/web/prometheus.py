"""``GET /metrics``: the cluster, its members, its jobs and their vertices, in Prometheus's
text format, built at scrape time from the master's answers (see source.py).

Per-vertex samples are Jet's job metrics (docs/operations.md) of the active jobs, summed
over each member's processors (the watermarks: the lowest, or for ``topObservedWm`` the
highest, of them), labelled ``job``, ``job_name``, ``vertex`` and ``member``. The list of
names is in docs/operations.md, "Prometheus".
"""
from __future__ import annotations

import re

from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from jetmq import protocol as p
from jetmq.ids import id_to_string
from jetmq.job_status import JobStatus
from jetmq.web.documents import measurements_of

__all__ = ["CONTENT_TYPE_LATEST", "render"]

JOB_LABELS = ["job", "job_name"]
VERTEX_LABELS = ["job", "job_name", "vertex", "member"]
#: Jet's Long.MIN_VALUE: no watermark yet.
NO_WATERMARK = -(2 ** 63)

#: Processor metrics summed into one sample per (job, vertex, member): (Jet's name, kind, help).
SUMMED = [
    ("receivedCount", "counter", "items the vertex's processors took from their inputs"),
    ("receivedBatches", "counter", "batches the vertex's processors took from their inputs"),
    ("emittedCount", "counter", "items the vertex's processors emitted (state saved to snapshots not counted)"),
    ("queuesSize", "gauge", "items waiting in the vertex's input queues"),
    ("queuesCapacity", "gauge", "what the vertex's input queues hold at most"),
    ("lateEventsDropped", "counter", "late events the vertex's processors dropped"),
    ("distributedItemsIn", "counter", "items that came to the vertex from other members"),
    ("distributedBytesIn", "counter", "bytes that came to the vertex from other members"),
    ("distributedItemsOut", "counter", "items the vertex sent to other members"),
    ("distributedBytesOut", "counter", "bytes the vertex sent to other members"),
    ("snapshotKeys", "gauge", "state entries the member saved of the vertex in the last snapshot"),
    ("snapshotBytes", "gauge", "bytes of state the member saved of the vertex in the last snapshot"),
]
#: Watermark metrics: (Jet's name, how the processors' values combine, help).
WATERMARKS = [
    ("topObservedWm", max, "the highest watermark the vertex's input queues delivered (epoch ms)"),
    ("coalescedWm", min, "the lowest coalesced input watermark of the vertex's processors (epoch ms)"),
    ("lastForwardedWm", min, "the lowest watermark the vertex's processors last emitted (epoch ms)"),
    ("lastForwardedWmLatency", max, "the highest latency of that watermark, in ms"),
]


def snake(name: str) -> str:
    """``receivedCount`` -> ``received_count``."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def render(source) -> bytes:
    """The text of one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(source))
    return generate_latest(registry)


class _Collector:
    def __init__(self, source):
        self._source = source

    def collect(self):
        source = self._source
        cluster = source.cluster_reply()
        yield from _cluster_families(cluster, source)
        jobs = source.request(p.GetJobs(None)).jobs
        by_status = GaugeMetricFamily("jetmq_jobs", "jobs the master lists, by status", labels=["status"])
        for status in JobStatus:
            by_status.add_metric([status.name], sum(1 for j in jobs if j.status == status.name))
        yield by_status
        info = GaugeMetricFamily("jetmq_job_info", "1 for every job the master lists, with its status",
                                 labels=[*JOB_LABELS, "status"])
        submitted = GaugeMetricFamily("jetmq_job_submission_time_seconds", "when the job was submitted",
                                      labels=JOB_LABELS)
        restarts = GaugeMetricFamily("jetmq_job_restarts", "restarts among the active job's last 20 executions",
                                     labels=JOB_LABELS)
        started = GaugeMetricFamily("jetmq_job_executions_started",
                                    "executions of the active job this master started", labels=JOB_LABELS)
        reported = GaugeMetricFamily("jetmq_job_metrics_timestamp_seconds",
                                     "when the newest metrics report of the active job was taken", labels=JOB_LABELS)
        vertices = _VertexFamilies()
        for job in jobs:
            labels = [id_to_string(job.job_id), job.name or ""]
            info.add_metric([*labels, job.status], 1)
            submitted.add_metric(labels, job.submission_time / 1000)
            if JobStatus[job.status].is_terminal:
                continue
            try:
                description = source.request(p.DescribeJob(job.job_id))
            except Exception:  # gone since it was listed, or a report that cannot be read: skip it
                continue
            restarts.add_metric(labels, sum(1 for e in description.executions if e.ended == "RESTARTED"))
            started.add_metric(labels, job.executions_started)
            try:
                measurements = measurements_of(description.metrics)
            except ValueError:
                continue
            if measurements:
                reported.add_metric(labels, max(ts for _, _, ts in measurements) / 1000)
            vertices.add(labels, measurements)
        yield from (info, submitted, restarts, started, reported)
        yield from vertices.families()


def _cluster_families(cluster: p.ClusterReply, source):
    info = GaugeMetricFamily("jetmq_cluster_info", "1, labelled with the cluster's name, version and state",
                             labels=["cluster_name", "version", "state"])
    info.add_metric([cluster.cluster_name, cluster.version, cluster.state], 1)
    yield info
    yield GaugeMetricFamily("jetmq_members", "members in the cluster", value=len(cluster.members))
    yield GaugeMetricFamily("jetmq_membership_version", "the membership's version (it grows on every change)",
                            value=cluster.membership_version)
    member_info = GaugeMetricFamily("jetmq_member_info", "1 for every member, with its address, host and pid",
                                    labels=["member", "address", "host", "pid", "forked"])
    heard = GaugeMetricFamily("jetmq_member_heartbeat_age_seconds", "how long ago the master last heard from "
                              "the member", labels=["member"])
    stalled = GaugeMetricFamily("jetmq_member_stalled_seconds", "how long the member's main loop had not run, "
                                "as its last heartbeat said", labels=["member"])
    restarts = GaugeMetricFamily("jetmq_member_restarts", "replacements forked into the member's slot",
                                 labels=["member"])
    cpu = GaugeMetricFamily("jetmq_member_cpu_percent", "CPU the member's process used since the last scrape, "
                            "in percent of one core (members on the master's host only)", labels=["member"])
    rss = GaugeMetricFamily("jetmq_member_rss_bytes", "resident memory of the member's process (members on the "
                            "master's host only)", labels=["member"])
    heard_ms = cluster.heard_ms or (None,) * len(cluster.members)
    for member, age_ms, stalled_ms, slot_restarts in zip(cluster.members, heard_ms, cluster.stalled_ms,
                                                         cluster.restarts):
        member_info.add_metric([member.uuid, member.address, member.host, str(member.pid),
                                str(member.forked).lower()], 1)
        if age_ms is not None:
            heard.add_metric([member.uuid], age_ms / 1000)
        stalled.add_metric([member.uuid], stalled_ms / 1000)
        restarts.add_metric([member.uuid], slot_restarts)
        usage = source.member_usage(member.pid, member.host)
        if usage["cpu_percent"] is not None:
            cpu.add_metric([member.uuid], usage["cpu_percent"])
            rss.add_metric([member.uuid], usage["rss_bytes"])
    yield from (member_info, heard, stalled, restarts, cpu, rss)


class _VertexFamilies:
    """Per-vertex samples of the jobs' measurements, summed per (job, vertex, member)."""

    def __init__(self):
        self._sums: dict[str, dict[tuple, float]] = {name: {} for name, _, _ in SUMMED}
        self._wms: dict[str, dict[tuple, list]] = {name: {} for name, _, _ in WATERMARKS}
        self._user: dict[tuple, float] = {}

    def add(self, job_labels: list[str], measurements) -> None:
        for tags, value, _ in measurements:
            metric, vertex = tags.get("metric"), tags.get("vertex")
            if vertex is None:
                continue
            key = (*job_labels, vertex, tags.get("member", ""))
            if tags.get("user") == "true":
                self._user[(*key, metric)] = self._user.get((*key, metric), 0) + value
            elif metric in self._sums:
                if metric == "emittedCount" and tags.get("ordinal") == "snapshot":
                    continue
                sums = self._sums[metric]
                sums[key] = sums.get(key, 0) + value
            elif metric in self._wms and "ordinal" not in tags and value != NO_WATERMARK:
                self._wms[metric].setdefault(key, []).append(value)

    def families(self):
        for name, kind, text in SUMMED:
            family_type = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            family = family_type(f"jetmq_vertex_{snake(name)}", f"{text} (Jet's {name})", labels=VERTEX_LABELS)
            for key, value in self._sums[name].items():
                family.add_metric(list(key), value)
            yield family
        for name, combine, text in WATERMARKS:
            family = GaugeMetricFamily(f"jetmq_vertex_{snake(name)}", f"{text} (Jet's {name})", labels=VERTEX_LABELS)
            for key, values in self._wms[name].items():
                family.add_metric(list(key), combine(values))
            yield family
        user = GaugeMetricFamily("jetmq_vertex_user_metric", "what the job's own code counted "
                                 "(jetmq.Metrics), summed over the vertex's processors",
                                 labels=[*VERTEX_LABELS, "metric"])
        for key, value in self._user.items():
            user.add_metric(list(key), value)
        yield user
