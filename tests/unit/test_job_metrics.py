"""JobMetrics, Measurement, MeasurementPredicates and user Metrics (jetmq.core.metrics), the
report members send (metrics_context), and what an in-process execution counts."""
import lz4.frame
import pytest

import jetmq
from jetmq.core import DAG, CollectSinkProcessor, Edge, FlatMapProcessor, ItemsSourceProcessor
from jetmq.core.metrics import (JobMetrics, Measurement, MeasurementPredicates as P, Metric, MetricNames,
                                MetricTags, Metrics, Unit)
from jetmq.core.metrics_context import CURRENT, decode_report, encode_report
from jetmq.core.partition import owner_table
from jetmq.core.processor import ProcessorContext
from jetmq.ids import id_to_string
from jetmq.member import metrics as member_metrics
from jetmq.member.engine.execution import Execution, Plan

pytestmark = pytest.mark.timeout(30)


def m(value, **tags):
    return Measurement(value, 1_000, tags)


SAMPLE = [
    m(5, metric="emittedCount", vertex="src", proc="0", ordinal="0", source="true"),
    m(7, metric="emittedCount", vertex="src", proc="1", ordinal="0", source="true"),
    m(2, metric="emittedCount", vertex="src", proc="1", ordinal="snapshot", source="true"),
    m(12, metric="receivedCount", vertex="sink", proc="0", ordinal="0", sink="true"),
    m(3, metric="lines", vertex="map", proc="0", user="true"),
]


# ---- Measurement ---------------------------------------------------------------------------


def test_a_measurement_has_its_value_timestamp_metric_and_tags():
    measurement = Measurement.of(42, 1_700_000_000_123, {"metric": "receivedCount", "vertex": "v", "proc": "3"})
    assert (measurement.value, measurement.timestamp, measurement.metric) == (42, 1_700_000_000_123, "receivedCount")
    assert measurement.tag("vertex") == "v" and measurement.tag("proc") == "3"
    assert measurement.tag("ordinal") is None
    assert measurement.tags == {"metric": "receivedCount", "proc": "3", "vertex": "v"}
    measurement.tags["vertex"] = "changed"  # a copy
    assert measurement.tag("vertex") == "v"


def test_measurements_compare_by_value_timestamp_and_tags():
    assert m(1, metric="a", x="1") == m(1, x="1", metric="a")
    assert hash(m(1, metric="a", x="1")) == hash(m(1, x="1", metric="a"))
    assert m(1, metric="a") != m(2, metric="a")
    assert m(1, metric="a") != Measurement(1, 2_000, {"metric": "a"})
    assert m(1, metric="a") != m(1, metric="a", x="1")


def test_a_measurement_prints_its_value_and_sorted_tags():
    text = repr(m(1234567, vertex="v", metric="emittedCount"))
    assert text.lstrip().startswith("1,234,567 ") and text.endswith("[metric=emittedCount, vertex=v]")


# ---- JobMetrics ----------------------------------------------------------------------------


def test_job_metrics_group_measurements_by_metric_name():
    metrics = JobMetrics.of(SAMPLE)
    assert metrics.metrics() == {"emittedCount", "receivedCount", "lines"}
    assert [x.value for x in metrics.get("emittedCount")] == [5, 7, 2]
    assert metrics.get("queuesSize") == []
    assert len(metrics) == 5


def test_get_returns_a_copy_and_refuses_none():
    metrics = JobMetrics.of(SAMPLE)
    metrics.get("emittedCount").clear()
    assert len(metrics.get("emittedCount")) == 3
    with pytest.raises(TypeError):
        metrics.get(None)


def test_a_measurement_without_a_metric_name_is_refused():
    with pytest.raises(ValueError, match="without a metric name"):
        JobMetrics.of([Measurement(1, 1, {"vertex": "v"})])


def test_empty_job_metrics_have_no_metrics():
    assert JobMetrics.empty().metrics() == set()
    assert JobMetrics.empty() == JobMetrics.of([])
    assert len(JobMetrics.empty()) == 0


def test_filter_by_tag_value_keeps_matching_measurements_and_drops_emptied_metrics():
    sources = JobMetrics.of(SAMPLE).filter("source", "true")
    assert sources.metrics() == {"emittedCount"}
    assert sum(x.value for x in sources.get("emittedCount")) == 14
    items = sources.filter(lambda x: x.tag("ordinal") != "snapshot")
    assert sum(x.value for x in items.get("emittedCount")) == 12
    assert JobMetrics.of(SAMPLE).filter("vertex", "nowhere") == JobMetrics.empty()


def test_filter_needs_a_tag_and_value_or_a_predicate():
    metrics = JobMetrics.of(SAMPLE)
    with pytest.raises(TypeError):
        metrics.filter("source")
    with pytest.raises(TypeError):
        metrics.filter(lambda x: True, "true")
    with pytest.raises(TypeError):
        metrics.filter(3, "x")


def test_job_metrics_print_by_metric_then_vertex():
    text = repr(JobMetrics.of(SAMPLE))
    lines = text.splitlines()
    assert lines[0] == "emittedCount:" and lines[1] == "  src:"
    assert [line for line in lines if not line.startswith(" ")] == ["emittedCount:", "lines:", "receivedCount:"]


# ---- MeasurementPredicates -----------------------------------------------------------------


def test_contains_tag():
    assert [x.value for x in JobMetrics.of(SAMPLE).filter(P.contains_tag("user")).get("lines")] == [3]
    assert JobMetrics.of(SAMPLE).filter(P.contains_tag("user")).metrics() == {"lines"}


def test_tag_value_equals():
    picked = JobMetrics.of(SAMPLE).filter(P.tag_value_equals("proc", "1"))
    assert [x.value for x in picked.get("emittedCount")] == [7, 2]
    assert picked.metrics() == {"emittedCount"}


def test_tag_value_matches_the_whole_value_and_as_jet_a_missing_tag():
    metrics = JobMetrics.of(SAMPLE)
    assert [x.value for x in metrics.filter(P.tag_value_matches("ordinal", r"\d+")).get("emittedCount")] == [5, 7]
    assert [x.value for x in metrics.filter(P.tag_value_matches("ordinal", "snap")).get("emittedCount")] == []
    # Jet's predicate also matches measurements without the tag
    assert [x.value for x in metrics.filter(P.tag_value_matches("ordinal", "x")).get("lines")] == [3]


# ---- user metrics --------------------------------------------------------------------------


def test_user_metrics_count_in_the_running_processors_context():
    context = ProcessorContext("v")
    CURRENT.context = context
    try:
        Metrics.metric("hits").increment()
        Metrics.metric("hits").increment(4)
        Metrics.metric("hits").decrement()
        Metrics.metric("size", Unit.BYTES).set(1024)
        Metrics.metric("gone").increment(3)
        Metrics.metric("gone").decrement(3)
    finally:
        CURRENT.context = None
    assert {name: (x.value, x.unit) for name, x in context.metrics.items()} == {
        "hits": (4, Unit.COUNT), "size": (1024, Unit.BYTES), "gone": (0, Unit.COUNT)}
    assert context.metrics["hits"].get() == 4


def test_user_metrics_are_per_processor():
    first, second = ProcessorContext("v", global_index=0), ProcessorContext("v", global_index=1)
    try:
        for context, times in ((first, 3), (second, 5), (first, 1)):
            CURRENT.context = context
            for _ in range(times):
                Metrics.metric("n").increment()
    finally:
        CURRENT.context = None
    assert (first.metrics["n"].value, second.metrics["n"].value) == (4, 5)


def test_a_user_metric_outside_a_processor_counts_nowhere():
    CURRENT.context = None
    metric = Metrics.metric("free")
    metric.increment(2)
    assert isinstance(metric, Metric) and metric.value == 2
    assert Metrics.metric("free").value == 0


def test_user_metrics_may_not_take_jetmqs_own_names_and_set_needs_an_int():
    context = ProcessorContext("v")
    context.metrics["lateEventsDropped"] = 2
    CURRENT.context = context
    try:
        for name in ("lateEventsDropped", MetricNames.EMITTED_COUNT):
            with pytest.raises(ValueError, match="jetmq's own metrics"):
                Metrics.metric(name)
        with pytest.raises(ValueError):
            Metrics.metric("")
        with pytest.raises(TypeError):
            Metrics.metric("x").set(1.5)
    finally:
        CURRENT.context = None


def test_metrics_is_exported_from_jetmq():
    assert jetmq.Metrics is Metrics


# ---- the report ----------------------------------------------------------------------------


def test_a_report_round_trips_with_common_group_and_extra_tags():
    blob = encode_report(1234, {"job": "j", "member": "m"},
                         [[{"vertex": "v", "proc": "0"}, [["emittedCount", "count", 10, {"ordinal": "0"}],
                                                         ["queuesSize", "count", 3, None]]],
                          [{}, [["executionStartTime", "ms", 99, None]]]])
    found = decode_report(blob)
    assert found == [
        ({"job": "j", "member": "m", "vertex": "v", "proc": "0", "ordinal": "0", "metric": "emittedCount",
          "unit": "count"}, 10, 1234),
        ({"job": "j", "member": "m", "vertex": "v", "proc": "0", "metric": "queuesSize", "unit": "count"}, 3, 1234),
        ({"job": "j", "member": "m", "metric": "executionStartTime", "unit": "ms"}, 99, 1234)]


@pytest.mark.parametrize("blob", [b"", b"not lz4", lz4.frame.compress(b"[1, 2]"),
                                  lz4.frame.compress(b'{"ts": 1, "tags": {}, "groups": [[{}, [["a", "count"]]]]}'),
                                  lz4.frame.compress(b'{"ts": 1, "tags": {"a": 1}, "groups": [[{}, [["a", "c", 1, null]]]]}'),
                                  lz4.frame.compress(b'{"ts": 1, "tags": {}, "groups": [[{}, [["a", "c", "1", null]]]]}'),
                                  lz4.frame.compress(b'{"ts": "1", "tags": {}, "groups": []}')])
def test_a_malformed_report_is_a_value_error(blob):
    with pytest.raises(ValueError, match="malformed metrics report"):
        decode_report(blob)


# ---- what an execution counts --------------------------------------------------------------


def _count_words(line):
    Metrics.metric("lines").increment()
    words = line.split()
    Metrics.metric("words").increment(len(words))
    return words


def test_an_execution_counts_items_batches_and_user_metrics_exactly():
    lines = [f"a b c{i % 7}" for i in range(5_000)]
    out = []
    dag = DAG()
    source = dag.new_vertex("source", lambda: ItemsSourceProcessor(lines))
    split = dag.new_vertex("split", lambda: FlatMapProcessor(_count_words), local_parallelism=3)
    sink = dag.new_vertex("sink", lambda: CollectSinkProcessor(out), local_parallelism=2)
    dag.edge(Edge.between(source, split)).edge(Edge.between(split, sink).partitioned(lambda w: w))
    execution = Execution(Plan(7, 9, 0, 1, tuple(owner_table([0]))), dag)
    execution.init()
    while not execution.is_done:
        execution.step()
    execution.close()
    assert CURRENT.context is None
    metrics = JobMetrics.of(Measurement(value, ts, tags) for tags, value, ts in decode_report(
        member_metrics.report(execution, "uuid-0", ["127.0.0.1:1"], 100, 200)))

    def total(name, *conditions):
        found = metrics.get(name)
        for tag, value in conditions:
            found = [x for x in found if x.tag(tag) == value]
        return sum(x.value for x in found)

    assert total("emittedCount", ("source", "true")) == 5_000
    assert total("receivedCount", ("vertex", "split")) == 5_000
    assert total("emittedCount", ("vertex", "split")) == 15_000
    assert total("receivedCount", ("sink", "true")) == 15_000
    assert total("lines", ("user", "true")) == 5_000 and total("words", ("user", "true")) == 15_000
    assert len(metrics.get("lines")) == 3  # one per processor of the flat_map
    batches = total("receivedBatches", ("vertex", "split"))
    assert 1 <= batches <= 5_000
    assert "snapshot" not in {x.tag("ordinal") for x in metrics.get("emittedCount")}  # no guarantee
    every = [x for name in metrics.metrics() for x in metrics.get(name)]
    assert {x.tag(MetricTags.JOB) for x in every} == {id_to_string(7)}
    assert {x.tag(MetricTags.EXECUTION) for x in every} == {id_to_string(9)}
    assert {(x.tag("member"), x.tag("address"), x.tag("module")) for x in every} == {("uuid-0", "127.0.0.1:1", "jet")}
    assert [x.value for x in metrics.get("executionStartTime")] == [100]
    assert [x.value for x in metrics.get("executionCompletionTime")] == [200]
    processors = {(x.tag("vertex"), x.tag("proc"), x.tag("procType")) for x in metrics.get("queuesCapacity")}
    assert processors == {("source", "0", "ItemsSourceProcessor"), ("split", "0", "FlatMapProcessor"),
                          ("split", "1", "FlatMapProcessor"), ("split", "2", "FlatMapProcessor"),
                          ("sink", "0", "CollectSinkProcessor"), ("sink", "1", "CollectSinkProcessor")}
    assert total("queuesSize") == 0
    assert [x.value for x in metrics.get("lastForwardedWm")] == [-(1 << 63)] * 6  # no watermark: Long.MIN_VALUE
