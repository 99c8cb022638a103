"""Job metrics, as Jet's ``com.hazelcast.jet.core.metrics``.

``Job.get_metrics()`` returns a ``JobMetrics``: the latest measurements the members
of the job's execution reported (every ``metrics_collection_interval``, and once more
when their part of the execution ends). A ``Measurement`` is a value, the time it was
taken (epoch ms) and its tags (``MetricTags``), among them ``metric``, its name
(``MetricNames``). ``Metrics.metric(name)`` gives user code a counter of its own,
reported per processor with ``user=true``. docs/operations.md lists what is measured.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Callable, Iterable

from jetmq.core.metrics_context import CURRENT, Metric, Unit

__all__ = ["JobMetrics", "Measurement", "MeasurementPredicates", "Metric", "MetricNames", "MetricTags", "Metrics",
           "Unit"]


class MetricNames:
    """The names of the metrics jetmq measures (Jet's ``MetricNames``)."""

    RECEIVED_COUNT = "receivedCount"
    RECEIVED_BATCHES = "receivedBatches"
    EMITTED_COUNT = "emittedCount"
    QUEUES_SIZE = "queuesSize"
    QUEUES_CAPACITY = "queuesCapacity"
    TOP_OBSERVED_WM = "topObservedWm"
    COALESCED_WM = "coalescedWm"
    LAST_FORWARDED_WM = "lastForwardedWm"
    LAST_FORWARDED_WM_LATENCY = "lastForwardedWmLatency"
    DISTRIBUTED_ITEMS_IN = "distributedItemsIn"
    DISTRIBUTED_BYTES_IN = "distributedBytesIn"
    DISTRIBUTED_ITEMS_OUT = "distributedItemsOut"
    DISTRIBUTED_BYTES_OUT = "distributedBytesOut"
    SNAPSHOT_BYTES = "snapshotBytes"
    SNAPSHOT_KEYS = "snapshotKeys"
    LATE_EVENTS_DROPPED = "lateEventsDropped"
    EXECUTION_START_TIME = "executionStartTime"
    EXECUTION_COMPLETION_TIME = "executionCompletionTime"

    ALL = frozenset({RECEIVED_COUNT, RECEIVED_BATCHES, EMITTED_COUNT, QUEUES_SIZE, QUEUES_CAPACITY, TOP_OBSERVED_WM,
                     COALESCED_WM, LAST_FORWARDED_WM, LAST_FORWARDED_WM_LATENCY, DISTRIBUTED_ITEMS_IN,
                     DISTRIBUTED_BYTES_IN, DISTRIBUTED_ITEMS_OUT, DISTRIBUTED_BYTES_OUT, SNAPSHOT_BYTES,
                     SNAPSHOT_KEYS, LATE_EVENTS_DROPPED, EXECUTION_START_TIME, EXECUTION_COMPLETION_TIME})


class MetricTags:
    """The names of the tags a measurement carries (Jet's ``MetricTags``)."""

    MODULE = "module"  # always "jet"
    MEMBER = "member"  # the uuid of the member that measured it
    ADDRESS = "address"  # that member's data address
    JOB = "job"  # the job's id, as "105d-01c1-8740-0bd8"
    EXECUTION = "exec"  # the execution's id, same form
    VERTEX = "vertex"
    PROCESSOR = "proc"  # the processor's global index
    PROCESSOR_TYPE = "procType"  # the processor's class name
    SOURCE = "source"  # "true" on the processors of a vertex without inputs
    SINK = "sink"  # "true" on the processors of a vertex without outputs
    ORDINAL = "ordinal"  # an input or output ordinal, or "snapshot"
    METRIC = "metric"  # the metric's name
    UNIT = "unit"  # "count", "ms", "bytes", ...
    DESTINATION_ADDRESS = "destinationAddress"  # where a distributed edge sends to
    SOURCE_ADDRESS = "sourceAddress"  # where a distributed edge receives from
    USER = "user"  # "true" on user metrics


class Measurement:
    """One measured value: ``value``, ``timestamp`` (epoch ms, when the member took it)
    and its tags; ``metric`` is its name (the "metric" tag)."""

    __slots__ = ("value", "timestamp", "_tags")

    def __init__(self, value: int, timestamp: int, tags: dict[str, str]):
        self.value = value
        self.timestamp = timestamp
        self._tags = dict(sorted(tags.items()))

    @classmethod
    def of(cls, value: int, timestamp: int, tags: dict[str, str]) -> Measurement:
        return cls(value, timestamp, tags)

    @property
    def metric(self) -> str | None:
        return self._tags.get(MetricTags.METRIC)

    def tag(self, name: str) -> str | None:
        """The value of tag ``name``, or None if the measurement has no such tag."""
        return self._tags.get(name)

    @property
    def tags(self) -> dict[str, str]:
        """A copy of every tag."""
        return dict(self._tags)

    def __eq__(self, other) -> bool:
        return (isinstance(other, Measurement) and self.value == other.value
                and self.timestamp == other.timestamp and self._tags == other._tags)

    def __hash__(self) -> int:
        return hash((self.value, self.timestamp, tuple(self._tags.items())))

    def __repr__(self) -> str:
        when = datetime.fromtimestamp(self.timestamp / 1000).strftime("%H:%M:%S.%f")[:-3]
        tags = ", ".join(f"{k}={v}" for k, v in self._tags.items())
        return f"{self.value:>26,} {when} [{tags}]"


Predicate = Callable[[Measurement], bool]


class MeasurementPredicates:
    """Predicates for ``JobMetrics.filter`` (Jet's ``MeasurementPredicates``)."""

    @staticmethod
    def contains_tag(tag: str) -> Predicate:
        """Measurements that have tag ``tag``."""
        return lambda m: m.tag(tag) is not None

    @staticmethod
    def tag_value_equals(tag: str, value: str) -> Predicate:
        """Measurements whose tag ``tag`` is ``value``."""
        return lambda m: m.tag(tag) == value

    @staticmethod
    def tag_value_matches(tag: str, regexp: str) -> Predicate:
        """Measurements whose tag ``tag`` matches ``regexp`` as a whole, and, as Jet's,
        those without the tag."""
        pattern = re.compile(regexp)

        def matches(m: Measurement) -> bool:
            value = m.tag(tag)
            return value is None or pattern.fullmatch(value) is not None
        return matches


class JobMetrics:
    """An immutable collection of a job's measurements, by metric name (Jet's ``JobMetrics``)."""

    __slots__ = ("_by_name",)

    def __init__(self, by_name: dict[str, list[Measurement]] | None = None):
        self._by_name = {name: list(ms) for name, ms in (by_name or {}).items() if ms}

    @staticmethod
    def empty() -> JobMetrics:
        return JobMetrics()

    @staticmethod
    def of(measurements: Iterable[Measurement]) -> JobMetrics:
        """The measurements by their metric name; ValueError for one without a name."""
        by_name: dict[str, list[Measurement]] = {}
        for m in measurements:
            if not m.metric:
                raise ValueError(f"a measurement without a metric name: {m!r}")
            by_name.setdefault(m.metric, []).append(m)
        return JobMetrics(by_name)

    def metrics(self) -> set[str]:
        """The names of the metrics present."""
        return set(self._by_name)

    def get(self, metric_name: str) -> list[Measurement]:
        """Every measurement of ``metric_name`` (empty if there is none)."""
        if metric_name is None:
            raise TypeError("metric_name must not be None")
        return list(self._by_name.get(metric_name, ()))

    def filter(self, tag_or_predicate: str | Predicate, value: str | None = None) -> JobMetrics:
        """The measurements whose tag ``tag`` equals ``value`` (``filter(tag, value)``), or that
        match a predicate (``filter(predicate)``, see MeasurementPredicates), in a new JobMetrics;
        metrics left without measurements are not in it."""
        if isinstance(tag_or_predicate, str):
            if value is None:
                raise TypeError("filter(tag, value) needs a value")
            predicate = MeasurementPredicates.tag_value_equals(tag_or_predicate, value)
        elif callable(tag_or_predicate) and value is None:
            predicate = tag_or_predicate
        else:
            raise TypeError("filter takes a tag name and a value, or a predicate")
        return JobMetrics({name: [m for m in ms if predicate(m)] for name, ms in self._by_name.items()})

    def __len__(self) -> int:
        """How many measurements there are."""
        return sum(map(len, self._by_name.values()))

    def __eq__(self, other) -> bool:
        return isinstance(other, JobMetrics) and self._by_name == other._by_name

    __hash__ = None

    def __repr__(self) -> str:
        lines = []
        for name in sorted(self._by_name):
            lines.append(f"{name}:")
            by_vertex: dict[str, list[Measurement]] = {}
            for m in self._by_name[name]:
                by_vertex.setdefault(m.tag(MetricTags.VERTEX) or "", []).append(m)
            for vertex in sorted(by_vertex):
                lines.append(f"  {vertex}:")
                lines += [f"    {m!r}" for m in by_vertex[vertex]]
        return "\n".join(lines)


class Metrics:
    """User metrics (Jet's ``Metrics``): ``Metrics.metric("name").increment()`` in any
    function a job runs counts for the processor running it; each processor's value is
    reported with its tags and ``user=true`` (sum them over the processors for a job
    total). Called outside a job's processor, it returns a metric that is reported nowhere.
    """

    @staticmethod
    def metric(name: str, unit: Unit = Unit.COUNT) -> Metric:
        """The running processor's metric ``name``, made (at 0) on first use."""
        context = CURRENT.context
        if context is None:
            return Metric(name, unit)
        registry = context.metrics
        metric = registry.get(name)
        if type(metric) is Metric:
            return metric
        if not isinstance(name, str) or not name:
            raise ValueError(f"a metric's name must be a non-empty str, not {name!r}")
        if metric is not None or name in MetricNames.ALL:
            raise ValueError(f"'{name}' is the name of one of jetmq's own metrics: choose another")
        metric = registry[name] = Metric(name, unit)
        return metric
