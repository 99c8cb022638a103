"""The NEXMark bench's result check (bench.nexmark.harness): a sink's summary of the
right rows passes, and a missing, extra or changed row or map value is reported, so a
wrong result (of jetmq or of Bytewax) never becomes a figure."""
import time

import pytest

from bench.nexmark import reference
from bench.nexmark.generator import GeneratorConfig, events
from bench.nexmark.harness import PARAMS, check, expected_summary, fingerprint, merge_summaries
from bench.nexmark.jet_runner import ResultSink
from bench.nexmark.model import Bid
from jetmq.core import Inbox, Outbox, ProcessorContext, SnapshotContext

pytestmark = pytest.mark.timeout(60)

STREAM = list(events(GeneratorConfig(seed=7), 5_000))


class Services:
    def __init__(self):
        self.lists = {}

    def list_add_all(self, name, items):
        self.lists.setdefault(name, []).extend(items)


def summarised_by_sinks(rows, mode="digest", parts=2, measure_from_ms=None):
    """The summaries of `parts` ResultSink processors, each given every parts-th row."""
    services = Services()
    for k in range(parts):
        sink = ResultSink("out", mode, measure_from_ms)
        sink.init(Outbox(1, 1024, snapshot_capacity=2),
                  ProcessorContext("sink", global_index=k, total_parallelism=parts, services=services,
                                   snapshot_context=SnapshotContext("NONE")))
        inbox = Inbox()
        inbox.add_batch(list(rows[k::parts]))
        sink.process(0, inbox)
        assert sink.complete()
    return [summary for _start, _end, summary, _latencies in services.lists["out"]]


@pytest.mark.parametrize("name", ["q1", "q7"])
def test_the_right_rows_pass_and_a_missing_extra_or_changed_row_is_caught(name):
    rows = list(reference.expected(name, STREAM, **PARAMS.get(name, {})))
    expected = expected_summary(name, STREAM)
    assert check(name, merge_summaries(summarised_by_sinks(rows)), expected) is None
    assert check(name, merge_summaries(summarised_by_sinks(rows[::-1], parts=3)), expected) is None  # any order
    assert "rows" in check(name, fingerprint(rows[1:]), expected)
    assert "rows" in check(name, fingerprint(rows + rows[:1]), expected)
    changed = list(rows)
    row = changed[len(rows) // 2]
    changed[len(rows) // 2] = row._replace(price=row.price + 1) if type(row) is Bid else (*row[:2], row[2] + 1,
                                                                                          *row[3:])
    error = check(name, fingerprint(changed), expected)
    assert error is not None and f"{len(rows):,} rows" in error  # as many rows, another fingerprint


def test_a_map_query_is_checked_key_by_key():
    expected = expected_summary("q4", STREAM)
    got = {}
    for part in summarised_by_sinks(list(expected.items()), mode="map"):
        got.update(part)
    assert check("q4", got, expected) is None
    key = next(iter(expected))
    assert "values differ" in check("q4", {**got, key: got[key] * 1.001}, expected)
    assert "keys" in check("q4", {k: v for k, v in got.items() if k != key}, expected)


def test_a_latency_sink_measures_the_events_due_from_its_start_and_checks_their_items():
    rows = list(reference.expected("q2", STREAM))
    now_ms = int(time.time() * 1000)
    events_ = [(now_ms - 10_000 + n, row) for n, row in enumerate(rows)]  # due 10 s ago, one per ms
    services = Services()
    sink = ResultSink("out", "digest", measure_from_ms=now_ms - 10_000 + 5)
    sink.init(Outbox(1, 1024, snapshot_capacity=2),
              ProcessorContext("sink", global_index=0, total_parallelism=1, services=services,
                               snapshot_context=SnapshotContext("NONE")))
    inbox = Inbox()
    inbox.add_batch(events_)
    sink.process(0, inbox)
    assert sink.complete()
    [(_start, _end, summary, latencies)] = services.lists["out"]
    assert check("q2", summary, expected_summary("q2", STREAM)) is None
    assert len(latencies) == len(rows) - 5
    assert all(9_000 < latency < 60_000 for latency in latencies)
