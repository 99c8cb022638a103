"""Job metrics on a real cluster: Job.get_metrics() while a job runs and after it completes,
store_metrics_after_job_completion, metrics_enabled, user metrics, snapshot metrics.

One 2-member cluster for the module, reporting metrics every 0.5 s.
"""
import itertools
import time

import pytest

import jetmq
from jetmq import JobConfig, JobStatus, Metrics, ProcessingGuarantee
from jetmq.core.metrics import MeasurementPredicates
from jetmq.pipeline import Pipeline, Sinks, Sources
from jetmq.pipeline.aggregate import AggregateOperations as ops
from jetmq.testing import wait_until

pytestmark = [pytest.mark.timeout(120), pytest.mark.integration]

INTERVAL_S = 0.5
JOB_TIMEOUT_S = 60
WAIT_S = 30
_names = itertools.count()


@pytest.fixture(scope="module")
def jet():
    with jetmq.Cluster(members=2, metrics_collection_interval=INTERVAL_S) as cluster:
        yield cluster


def total(metrics, name, **tags) -> int:
    found = metrics.get(name)
    for tag, value in tags.items():
        found = [m for m in found if m.tag(tag) == value]
    return sum(m.value for m in found)


def _split_counting(line):
    Metrics.metric("lines").increment()
    words = line.split()
    Metrics.metric("words").increment(len(words))
    return words


def _word(word):
    return word


def word_count(tmp_path, sink_name):
    directory = tmp_path / f"books-{sink_name}"
    directory.mkdir()
    lines = []
    for index in range(4):
        part = [" ".join(f"w{(index * 31 + line * 7 + k) % 503}" for k in range(1 + line % 9))
                for line in range(2_500 + index * 100)]
        (directory / f"part-{index}.txt").write_text("\n".join(part) + "\n")
        lines += part
    p = Pipeline()
    (p.read_from(Sources.files(str(directory)))
      .flat_map(_split_counting)
      .grouping_key(_word)
      .aggregate(ops.counting())
      .write_to(Sinks.map(sink_name)))
    return p, lines


def test_batch_word_count_metrics_are_kept_after_completion(jet, tmp_path):
    sink = f"counts-{next(_names)}"
    pipeline, lines = word_count(tmp_path, sink)
    words = [w for line in lines for w in line.split()]
    job = jet.new_job(pipeline, JobConfig(store_metrics_after_job_completion=True))
    job.join(timeout=JOB_TIMEOUT_S)
    assert jet.get_map(sink) == {w: words.count(w) for w in set(words)}
    metrics = job.get_metrics()
    # the source emitted each line once, the sink received each distinct word's count once
    assert total(metrics, "emittedCount", source="true") == len(lines)
    assert total(metrics, "receivedCount", sink="true") == len(set(words))
    # user metrics, counted per flat_map processor, add up to their reference
    assert total(metrics, "lines", user="true") == len(lines)
    assert total(metrics, "words", user="true") == len(words)
    assert len(metrics.get("lines")) == 2  # one flat_map processor on each of the 2 members
    # items are neither lost nor made up on the way, nor on the network
    accumulate = {m.tag("vertex") for m in metrics.get("lines")}.pop()
    assert total(metrics, "receivedCount", vertex=accumulate) == len(lines)
    emitted_by_accumulate = total(metrics, "emittedCount", vertex=accumulate)
    combine = [v for v in {m.tag("vertex") for m in metrics.get("receivedCount")}
               if v != accumulate and m_is_not_sink(metrics, v)]
    assert len(combine) == 1
    assert total(metrics, "receivedCount", vertex=combine[0]) == emitted_by_accumulate
    assert total(metrics, "emittedCount", vertex=combine[0]) == len(set(words))
    assert total(metrics, "distributedItemsOut") == total(metrics, "distributedItemsIn") > 0
    assert total(metrics, "distributedBytesOut") == total(metrics, "distributedBytesIn") > 0
    # every measurement carries the job's tags; each member says when its part started and ended
    members = {m.uuid: m.address for m in jet.cluster().members}
    every = [m for name in metrics.metrics() for m in metrics.get(name)]
    assert {m.tag("job") for m in every} == {job.id_string}
    assert len({m.tag("exec") for m in every}) == 1
    assert {(m.tag("member"), m.tag("address")) for m in every} == set(members.items())
    starts = {m.tag("member"): m.value for m in metrics.get("executionStartTime")}
    ends = {m.tag("member"): m.value for m in metrics.get("executionCompletionTime")}
    assert set(starts) == set(ends) == set(members)
    assert all(0 < starts[u] <= ends[u] for u in members)
    assert all(m.tag("user") is None for m in metrics.get("emittedCount"))
    # asking again gives the same stored metrics
    assert job.get_metrics() == metrics


def m_is_not_sink(metrics, vertex) -> bool:
    return not metrics.filter("vertex", vertex).filter(MeasurementPredicates.contains_tag("sink")).metrics()


def test_a_finished_job_keeps_no_metrics_unless_asked(jet, tmp_path):
    pipeline, _ = word_count(tmp_path, f"counts-{next(_names)}")
    job = jet.new_job(pipeline)
    job.join(timeout=JOB_TIMEOUT_S)
    assert job.status is JobStatus.COMPLETED
    assert job.get_metrics().metrics() == set()


def _tick(item):
    Metrics.metric("ticks").increment()
    return item


def streaming_pipeline(per_second: int) -> Pipeline:
    p = Pipeline()
    (p.read_from(Sources.item_stream(per_second))
      .with_ingestion_timestamps()
      .map(_tick)
      .write_to(Sinks.noop()))
    return p


def test_a_streaming_job_shows_fresh_measurements_while_running(jet):
    job = jet.new_job(streaming_pipeline(200))
    try:
        wait_until(lambda: job.status is JobStatus.RUNNING, WAIT_S, "the job did not start")
        first = wait_until(lambda: (lambda ms: ms if total(ms, "emittedCount", source="true") > 0 else None)(
            job.get_metrics()), WAIT_S, "no source emitted anything in the metrics")
        assert job.status is JobStatus.RUNNING
        assert first.metrics() >= {"receivedCount", "receivedBatches", "emittedCount", "queuesSize", "queuesCapacity",
                                   "topObservedWm", "coalescedWm", "lastForwardedWm", "lastForwardedWmLatency",
                                   "executionStartTime", "executionCompletionTime", "ticks"}
        # a member whose source emits has not completed its part (one whose part of the stream
        # is empty may have)
        emitting = {m.tag("member") for m in first.filter("source", "true").get("emittedCount") if m.value > 0}
        assert {m.value for m in first.get("executionCompletionTime") if m.tag("member") in emitting} == {-1}
        assert total(first, "queuesCapacity") > 0
        # later reports replace earlier ones: counts grow, timestamps move on
        before = total(first, "emittedCount", source="true")
        later = wait_until(lambda: (lambda ms: ms if total(ms, "emittedCount", source="true") > before else None)(
            job.get_metrics()), WAIT_S, "the metrics did not move on")
        assert max(m.timestamp for m in later.get("emittedCount")) > max(m.timestamp for m in first.get("emittedCount"))
        assert total(later, "ticks", user="true") > 0
        # every source processor that emitted items forwarded a watermark, recently
        sources = later.filter("source", "true")
        emitted = {(m.tag("member"), m.tag("proc")) for m in sources.get("emittedCount") if m.value > 0}
        assert emitted
        forwarded = {(m.tag("member"), m.tag("proc")): m.value for m in sources.get("lastForwardedWm")}
        latency = {(m.tag("member"), m.tag("proc")): m.value for m in sources.get("lastForwardedWmLatency")}
        assert all(forwarded[p] > 0 and 0 <= latency[p] < 60_000 for p in emitted)
        # a restart starts a new execution, whose metrics replace the old one's
        old_exec = {m.tag("exec") for m in later.get("emittedCount")}
        job.restart()
        renewed = wait_until(lambda: (lambda ms: ms if ms.metrics() and {m.tag("exec") for m in ms.get(
            "emittedCount")}.isdisjoint(old_exec) else None)(job.get_metrics()), WAIT_S,
            "the restarted job's metrics did not come from its new execution")
        assert len({m.tag("exec") for m in renewed.get("executionStartTime")}) == 1
    finally:
        job.cancel()
    wait_until(lambda: job.status is JobStatus.FAILED, WAIT_S, "the job was not cancelled")
    assert job.get_metrics().metrics() == set()  # not kept after completion


def test_a_job_with_metrics_disabled_reports_none(jet):
    disabled = jet.new_job(streaming_pipeline(100), JobConfig(metrics_enabled=False))
    enabled = jet.new_job(streaming_pipeline(100))
    try:
        wait_until(lambda: disabled.status is JobStatus.RUNNING and enabled.status is JobStatus.RUNNING, WAIT_S,
                   "the jobs did not start")
        running_since = time.time() * 1000
        # two collection rounds later the enabled job has reported; the disabled one never does
        wait_until(lambda: any(m.timestamp > running_since + 2 * INTERVAL_S * 1000
                               for m in enabled.get_metrics().get("emittedCount")), WAIT_S,
                   "the enabled job reported no metrics")
        assert disabled.get_metrics().metrics() == set()
        assert disabled.metrics()["executions_started"] == 1  # the job counters still work
    finally:
        disabled.cancel()
        enabled.cancel()


def _key_of(event):
    return event.sequence % 10


def test_snapshot_metrics_count_the_state_saved(jet):
    p = Pipeline()
    (p.read_from(Sources.item_stream(200))
      .with_ingestion_timestamps()
      .grouping_key(_key_of)
      .rolling_aggregate(ops.counting())
      .write_to(Sinks.noop()))
    job = jet.new_job(p, JobConfig(processing_guarantee=ProcessingGuarantee.EXACTLY_ONCE, snapshot_interval_ms=200))
    try:
        def rolling_vertex():
            ms = job.get_metrics()
            found = {m.tag("vertex") for m in ms.get("queuesCapacity") if "Rolling" in m.tag("procType")}
            return found.pop() if found else None
        vertex = wait_until(rolling_vertex, WAIT_S, "no metrics of the rolling aggregate")
        # once every key was seen and a snapshot taken after, the vertex saved exactly its 10 keys
        wait_until(lambda: total(job.get_metrics(), "snapshotKeys", vertex=vertex) == 10, WAIT_S,
                   lambda: f"snapshotKeys: {job.get_metrics().get('snapshotKeys')}")
        metrics = job.get_metrics()
        assert total(metrics, "snapshotBytes", vertex=vertex) > 0
        assert total(metrics, "emittedCount", vertex=vertex, ordinal="snapshot") >= 10
        assert {m.tag("member") for m in metrics.get("snapshotKeys")} == {m.uuid for m in jet.cluster().members}
    finally:
        job.cancel()
