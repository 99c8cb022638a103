"""NEXMark (issue #18): the generator, and the eight queries as jetmq pipelines on a
real 2-member cluster over 100,000 events, each equal to its plain-Python reference
(bench.nexmark.reference) over the same events: streams as multisets, windowed
queries window by window, maps key by key (averages within 1e-9, relative).

One cluster for the module. The events are out of order within groups of 100
(10 ms of event time at 10,000 events/s), so the watermarks' allowed lag matters.
"""
import itertools
import math
import time
from collections import Counter, defaultdict

import pytest

import jetmq
from bench.nexmark import queries, reference
from bench.nexmark.generator import (
    AUCTION_PROPORTION,
    PERSON_PROPORTION,
    PROPORTION_DENOMINATOR,
    GeneratorConfig,
    _create,
    _fill,
    _restore,
    _save,
    event_at,
    events,
    nexmark_source,
)
from bench.nexmark.model import Auction, Bid, Person
from jetmq import JobConfig, JobStatus, ProcessingGuarantee
from jetmq.pipeline import Sinks
from jetmq.testing import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

EVENTS = 100_000
CONFIG = GeneratorConfig(seed=7, out_of_order_group=100)
JOB_TIMEOUT_S = 240
# smaller windows than the standard 10 s / 5 s, so that 10 s of events make ~10 windows
PARAMS = {
    "q5": {"window_ms": 2_000, "period_ms": 1_000},
    "q7": {"window_ms": 1_000},
    "q8": {"window_ms": 1_000},
}
WINDOWED = {"q5", "q7", "q8"}
MAPS = {"q4", "q6"}
_names = itertools.count()


@pytest.fixture(scope="module")
def jet():
    with jetmq.Cluster(members=2) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def stream():
    return list(events(CONFIG, EVENTS))


# ---- comparing ----------------------------------------------------------------------------------

def assert_same_rows(got, expected):
    got, expected = Counter(got), Counter(expected)
    missing, extra = expected - got, got - expected
    assert not missing and not extra, (f"{sum(missing.values())} rows missing, e.g. {list(missing)[:3]}; "
                                       f"{sum(extra.values())} rows extra, e.g. {list(extra)[:3]}")


def assert_same_windows(got, expected):
    def by_window(rows):
        windows = defaultdict(list)
        for row in rows:
            windows[(row[0], row[1])].append(row)
        return windows
    got, expected = by_window(got), by_window(expected)
    assert sorted(got) == sorted(expected), "the windows differ"
    for window in sorted(expected):
        assert Counter(got[window]) == Counter(expected[window]), f"window {window}: {got[window]} != " \
                                                                  f"{expected[window]}"


def assert_same_map(got, expected):
    assert sorted(got) == sorted(expected), "the keys differ"
    wrong = {k: (got[k], v) for k, v in expected.items() if not math.isclose(got[k], v, rel_tol=1e-9)}
    assert not wrong, f"{len(wrong)} values differ (got, expected), e.g. {list(wrong.items())[:3]}"


# ---- the queries ---------------------------------------------------------------------------------

def run_query(jet, name, config=CONFIG, count=EVENTS, job_config=None):
    sink_name = f"nexmark-{name}-{next(_names)}"
    sink = Sinks.map(sink_name) if name in MAPS else Sinks.list(sink_name)
    p = queries.build(queries.QUERIES[name], nexmark_source(config, count), sink, config, **PARAMS.get(name, {}))
    start = time.perf_counter()
    jet.new_job(p, job_config or JobConfig(name=sink_name)).join(timeout=JOB_TIMEOUT_S)
    elapsed = time.perf_counter() - start
    print(f"{name}: {count:,} events in {elapsed:.2f} s ({count / elapsed:,.0f} events/s)")
    return jet.get_map(sink_name) if name in MAPS else jet.get_list(sink_name)


@pytest.mark.parametrize("name", sorted(queries.QUERIES))
def test_query_equals_the_plain_python_reference(jet, stream, name):
    got = run_query(jet, name)
    expected = reference.expected(name, stream, **PARAMS.get(name, {}))
    assert expected, f"{name}: the reference is empty, the test would prove nothing"
    if name in MAPS:
        assert_same_map(got, expected)
    elif name in WINDOWED:
        assert_same_windows(got, expected)
    else:
        assert_same_rows(got, expected)


# ---- the generator ---------------------------------------------------------------------------------

def test_events_have_the_standard_proportions_and_bounded_disorder(stream):
    assert [event_at(CONFIG, i) for i in (0, 4_321, EVENTS - 1)] == [stream[0], stream[4_321], stream[-1]]
    kinds = Counter(type(e) for e in stream)
    blocks = EVENTS // PROPORTION_DENOMINATOR
    assert kinds == {Person: blocks * PERSON_PROPORTION, Auction: blocks * AUCTION_PROPORTION,
                     Bid: blocks * (PROPORTION_DENOMINATOR - PERSON_PROPORTION - AUCTION_PROPORTION)}
    auctions = [e for e in stream if type(e) is Auction]
    assert sorted(a.id for a in auctions) == list(range(1000, 1000 + len(auctions)))
    assert {a.category for a in auctions} == {10, 11, 12, 13, 14}
    assert all(0 < a.expires - a.date_time <= CONFIG.max_auction_length_ms() for a in auctions)
    newest, worst = -1, 0
    for e in stream:
        worst = max(worst, newest - e.date_time)
        newest = max(newest, e.date_time)
    assert 0 < worst <= CONFIG.max_delay_ms()
    assert newest == CONFIG.time_of(EVENTS - 1)
    assert list(events(GeneratorConfig(seed=8), 100)) != stream[:100]


class _Context:
    def __init__(self, index, parallelism):
        self.global_index = index
        self.total_parallelism = parallelism


class _Buffer:
    def __init__(self):
        self.items = []
        self.closed = False

    def add(self, item, ts):
        self.items.append((ts, item))

    def close(self):
        self.closed = True


def test_source_positions_survive_a_restore_on_another_parallelism():
    # Given 2 instances that emitted part of 2,000 events (unevenly), then saved their positions
    count, emitted = 2_000, []
    old = [_create(CONFIG, count, False, 100, _Context(k, 2)) for k in range(2)]
    for state, calls in zip(old, (3, 5)):
        for _ in range(calls):
            buffer = _Buffer()
            _fill(state, buffer)
            emitted += [item for _ts, item in buffer.items]
    saved = [_save(state) for state in old]
    # When 3 instances restore from those positions and run to the end
    for k in range(3):
        state = _create(CONFIG, count, False, 100, _Context(k, 3))
        _restore(state, saved)
        buffer = _Buffer()
        while not buffer.closed:
            _fill(state, buffer)
        emitted += [item for _ts, item in buffer.items]
    # Then every event was emitted exactly once
    assert Counter(emitted) == Counter(events(CONFIG, count))


def test_paced_source_is_exactly_once_across_suspend_and_resume(jet):
    # Given a paced source (event time = wall time, 10,000 events/s) under EXACTLY_ONCE
    count = 50_000  # 5 s of events
    config = GeneratorConfig.starting_now(seed=3, out_of_order_group=10)
    sink_name = f"nexmark-paced-{next(_names)}"
    p = queries.build(queries.q1, nexmark_source(config, count, paced=True), Sinks.list(sink_name), config)
    job = jet.new_job(p, JobConfig(name=sink_name, processing_guarantee=ProcessingGuarantee.EXACTLY_ONCE,
                                   snapshot_interval_ms=500))
    # When it is suspended part way and resumed
    wait_until(lambda: job.status is JobStatus.RUNNING, 30, lambda: f"the job is {job.status}")
    time.sleep(1.5)
    job.suspend()
    wait_until(lambda: job.status is JobStatus.SUSPENDED, 30, lambda: f"the job is {job.status}")
    assert time.time() * 1000 < config.time_of(count - 1), "the job ended before it was suspended"
    job.resume()
    job.join(timeout=JOB_TIMEOUT_S)
    # Then its output is q1 of the events, each once
    assert_same_rows(jet.get_list(sink_name), reference.q1(list(events(config, count))))
