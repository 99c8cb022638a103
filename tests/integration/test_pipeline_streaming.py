"""Streaming pipelines on real clusters of 1 and of 3 members: windows, rolling
aggregates and map_stateful against plain-Python references, item_stream into an
observable, exactly-once windows across suspend/resume/restart, and the file watcher,
socket and SourceBuilder.stream sources.

Two clusters for the whole module (one per size, each reused by every test).
"""
import itertools
import math
import random
import socket
import threading
import time
from collections import defaultdict

import pytest

import jetmq
from jetmq import JobConfig, JobStatus, ProcessingGuarantee
from jetmq.errors import JobFailedError
from jetmq.pipeline import Pipeline, Sinks, SourceBuilder, Sources, WindowDefinition, WindowResult
from jetmq.pipeline.aggregate import AggregateOperations as ops
from jetmq.pipeline.windows import frame_end
from jetmq.testing import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

JOB_TIMEOUT_S = 60
WAIT_S = 30
_names = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


@pytest.fixture(scope="module", params=[1, 3], ids=["1-member", "3-members"])
def jet(request):
    with jetmq.Cluster(members=request.param) as cluster:
        yield cluster


def status_is(job, status):
    wait_until(lambda: job.status is status, WAIT_S, lambda: f"{job.name} is {job.status}, not {status.name}")


# ---- windows over a batch turned into a stream ----------------------------------------------

LAG = 50
KEYS = 3


def timestamped_records(count=3000, seed=7):
    """(key, ts, index): timestamps mostly ascending, out of order within LAG, and every
    50th record (from the 100th) far behind: late wherever it is processed."""
    rng = random.Random(seed)
    records, late = [], set()
    for i in range(count):
        ts = i * 7 - rng.randint(0, 40)
        if i >= 100 and i % 50 == 0:
            ts = i * 7 - 500
            late.add(i)
        records.append((i % KEYS, ts, i))
    return records, late


def reference_sliding(records, late, size, step, keyed=True):
    sums = defaultdict(int)
    for key, ts, i in records:
        if i in late:
            continue
        first = frame_end(ts, step)
        for end in range(first, first + size, step):
            sums[(end - size, end, key if keyed else None)] += i
    return by_window(WindowResult(s, e, k, v) for (s, e, k), v in sums.items())


def reference_sessions(records, late, gap):
    by_key = defaultdict(list)
    for key, ts, i in records:
        if i not in late:
            by_key[key].append((ts, i))
    out = []
    for key, events in by_key.items():
        events.sort()
        start = end = None
        total = 0
        for ts, i in events:
            if start is not None and ts < end:  # less than gap after the last item
                end, total = max(end, ts + gap), total + i
                continue
            if start is not None:
                out.append(WindowResult(start, end, key, total))
            start, end, total = ts, ts + gap, i
        out.append(WindowResult(start, end, key, total))
    return by_window(out)


def by_window(results):
    return sorted(results, key=lambda r: (r.start, r.end, repr(r.key)))


def test_window_results_equal_a_plain_python_reference(jet):
    # Given timestamped records, out of order within the allowed lag, with late ones beyond it
    records, late = timestamped_records()
    p = Pipeline()
    stream = p.read_from(Sources.items(records)).with_timestamps(lambda r: r[1], LAG)
    keyed = stream.grouping_key(lambda r: r[0])
    index = ops.summing(lambda r: r[2])
    names = {name: unique(name) for name in ("tumbling", "sliding", "session", "all")}
    keyed.window(WindowDefinition.tumbling(100)).aggregate(index).write_to(Sinks.list(names["tumbling"]))
    keyed.window(WindowDefinition.sliding(100, 20)).aggregate(index).write_to(Sinks.list(names["sliding"]))
    keyed.window(WindowDefinition.session(15)).aggregate(index).write_to(Sinks.list(names["session"]))
    stream.window(WindowDefinition.tumbling(250)).aggregate(index).write_to(Sinks.list(names["all"]))
    # When the job runs to the end of the batch
    jet.new_job(p).join(timeout=JOB_TIMEOUT_S)
    # Then every window equals the reference, once, late records left out
    assert by_window(jet.get_list(names["tumbling"])) == reference_sliding(records, late, 100, 100)
    assert by_window(jet.get_list(names["sliding"])) == reference_sliding(records, late, 100, 20)
    assert by_window(jet.get_list(names["session"])) == reference_sessions(records, late, 15)
    assert by_window(jet.get_list(names["all"])) == reference_sliding(records, late, 250, 250, keyed=False)


def _sessions_split_over_members_source():
    """Processor 0 (on member 0) has ("k", 0) and ("z", 1000), processor 1 (on member
    1) ("k", 8), ("k", 15) and ("z", 20); both stay open for 1.5 s, any other ends
    at once. Member 0's watermark runs ahead to 1000 while member 1's stays at 20."""
    def create(ctx):
        items = {0: [("k", 0), ("z", 1000)], 1: [("k", 8), ("k", 15), ("z", 20)]}.get(ctx.global_index)
        return {"items": items, "until": time.monotonic() + 1.5}

    def fill(state, buffer):
        for item in state["items"] or ():
            buffer.add(item, timestamp=item[1])
        if state["items"] is None or time.monotonic() >= state["until"]:
            buffer.close()
        state["items"] = []
    return (SourceBuilder.timestamped_stream("split-sessions", create).fill_buffer_fn(fill)
            .distributed(1).build())


def test_a_session_whose_items_are_on_two_members_comes_out_whole(jet):
    if jet.member_count < 2:
        pytest.skip("needs a session's items on two members")
    # Given the items of session [0, 25) of "k" on two members, one of whose
    # watermarks passes the end of its own part of the session long before the other's
    name = unique("split-sessions")
    p = Pipeline()
    (p.read_from(_sessions_split_over_members_source()).with_native_timestamps(0)
      .grouping_key(lambda e: e[0]).window(WindowDefinition.session(10)).aggregate(ops.to_list())
      .write_to(Sinks.list(name)))
    # When the job runs to the end of the sources
    jet.new_job(p).join(timeout=JOB_TIMEOUT_S)
    # Then "k" has one session with all three items, not one per member
    got = by_window(WindowResult(r.start, r.end, r.key, sorted(r.value)) for r in jet.get_list(name))
    assert got == [WindowResult(0, 25, "k", [("k", 0), ("k", 8), ("k", 15)]),
                   WindowResult(20, 30, "z", [("z", 20)]),
                   WindowResult(1000, 1010, "z", [("z", 1000)])]


# ---- rolling_aggregate and map_stateful with a TTL ---------------------------------------------

TTL = 100


BURSTS = 6


def bursts():
    """(key, ts): per key, bursts of items 10 ms apart, bursts 1 s apart (>> TTL + lag),
    in timestamp order."""
    events = []
    for burst in range(BURSTS):
        for n in range(5 + burst):
            for key in range(KEYS):
                events.append((key, burst * 1000 + n * 10 + key))
    return sorted(events, key=lambda e: e[1])


def paced_bursts_source():
    """One instance in the cluster (so every keyed processor sees its items and the
    watermarks in one order), a burst every 50 ms of wall time after a 500 ms start:
    by then the other members' source processors, which have no data, have ended, so
    they hold no watermark back."""
    def create(ctx):
        return {"start": time.monotonic(), "events": bursts(), "burst": 0}

    def fill(state, buffer):
        due = math.floor((time.monotonic() - state["start"] - 0.5) / 0.05) + 1
        while state["burst"] < min(due, BURSTS):
            for event in state["events"]:
                if event[1] // 1000 == state["burst"]:
                    buffer.add(event)
            state["burst"] += 1
        if state["burst"] == BURSTS:
            buffer.close()
    return SourceBuilder.batch("bursts", create).fill_buffer_fn(fill).build()


def _count_in_burst(state, key, item):
    state[0] += 1
    return (key, item[1], state[0])


def _count_all(state, item):
    state[0] += 1
    return item[1]


def test_rolling_aggregate_and_map_stateful_with_ttl_equal_references(jet):
    events = bursts()
    p = Pipeline()
    stream = p.read_from(paced_bursts_source()).with_timestamps(lambda e: e[1], 0)
    keyed = stream.grouping_key(lambda e: e[0])
    names = {name: unique(name) for name in ("rolling", "rolling-all", "ttl", "evicted")}
    keyed.rolling_aggregate(ops.summing(lambda e: e[1])).write_to(Sinks.list(names["rolling"]))
    stream.rolling_aggregate(ops.counting()).write_to(Sinks.list(names["rolling-all"]))
    (keyed.map_stateful(lambda: [0], _count_in_burst, ttl_ms=TTL,
                        on_evict_fn=lambda state, key, wm: ("evicted", key, state[0]))
          .write_to(Sinks.list(names["ttl"])))
    jet.new_job(p).join(timeout=JOB_TIMEOUT_S)

    sums, expected_rolling = defaultdict(int), []
    for key, ts in events:
        sums[key] += ts
        expected_rolling.append((key, sums[key]))
    got = jet.get_list(names["rolling"])
    for key in range(KEYS):  # per key, in order
        assert [r for r in got if r[0] == key] == [r for r in expected_rolling if r[0] == key]
    assert sorted(jet.get_list(names["rolling-all"])) == list(range(1, len(events) + 1))

    expected_ttl, evicted = [], []
    for burst in range(BURSTS):
        for key in range(KEYS):
            size = 5 + burst
            expected_ttl += [(key, burst * 1000 + n * 10 + key, n + 1) for n in range(size)]
            if burst < BURSTS - 1:  # the last burst's states are never evicted: the stream ends first
                evicted.append(("evicted", key, size))
    got = jet.get_list(names["ttl"])
    assert sorted(r for r in got if r[0] != "evicted") == sorted(expected_ttl)
    assert sorted(r for r in got if r[0] == "evicted") == sorted(evicted)


# ---- item_stream into an observable, while running -------------------------------------------

def test_item_stream_windows_reach_an_observable_exactly_once(jet):
    # Given item_stream at 1,000 items/s counted in tumbling windows of 100 ms
    name = unique("counts")
    p = Pipeline()
    (p.read_from(Sources.item_stream(1000)).with_native_timestamps(0)
      .window(WindowDefinition.tumbling(100)).aggregate(ops.counting())
      .write_to(Sinks.observable(name)))
    job = jet.new_job(p)
    # When a client reads the observable while the job runs
    results = []
    for result in jet.get_observable(name):
        results.append(result)
        if len(results) == 25:
            break
    job.cancel()
    # Then windows come in order, each once, contiguous, full ones holding rate x size items
    starts = [r.start for r in results]
    assert starts == list(range(starts[0], starts[0] + 100 * len(results), 100))
    assert all(r.end == r.start + 100 and r.key is None for r in results)
    assert 0 < results[0].value <= 100
    assert [r.value for r in results[1:]] == [100] * (len(results) - 1)


# ---- exactly-once windows across suspend, resume and restart -----------------------------------

RATE = 2000


def _sequence(_ts, seq):
    return seq


def test_exactly_once_windows_survive_suspend_resume_and_restart(jet):
    # Given an exactly-once job counting item_stream's items per key in sliding windows
    name = unique("exactly-once-windows")
    p = Pipeline()
    (p.read_from(Sources.item_stream(RATE, _sequence)).with_native_timestamps(0)
      .grouping_key(lambda seq: seq % 4)
      .window(WindowDefinition.sliding(100, 50)).aggregate(ops.counting())
      .write_to(Sinks.list(name)))
    config = JobConfig(name=name, processing_guarantee=ProcessingGuarantee.EXACTLY_ONCE,
                       snapshot_interval_ms=200)
    job = jet.new_job(p, config)

    def more_results(than):
        wait_until(lambda: len(jet.get_list(name)) > than + 20, WAIT_S, "no new window results")
        return len(jet.get_list(name))

    # When it is suspended, resumed and restarted while it runs
    seen = more_results(0)
    job.suspend()
    status_is(job, JobStatus.SUSPENDED)
    job.resume()
    status_is(job, JobStatus.RUNNING)
    seen = more_results(seen)
    job.restart()
    status_is(job, JobStatus.RUNNING)
    more_results(seen)
    job.cancel()
    # Then each window of each key is there once, the windows are contiguous, and every
    # full window counts exactly its items: nothing lost, nothing duplicated
    results = jet.get_list(name)
    per_key = defaultdict(list)
    for r in results:
        per_key[r.key].append(r)
    assert set(per_key) == {0, 1, 2, 3}
    full = RATE * 100 // 1000 // 4
    for key, windows in per_key.items():
        starts = sorted(w.start for w in windows)
        assert len(starts) == len(set(starts)), f"key {key}: duplicated windows"
        assert starts == list(range(starts[0], starts[-1] + 50, 50)), f"key {key}: windows missing"
        values = {w.start: w.value for w in windows}
        assert [values[s] for s in starts[2:]] == [full] * (len(starts) - 2), f"key {key}: {values}"


# ---- file watcher, socket and SourceBuilder.stream ---------------------------------------------

def test_file_watcher_emits_lines_appended_after_the_start(jet, tmp_path):
    watched = tmp_path / "watched"
    watched.mkdir()
    (watched / "old.txt").write_text("before the job\n")
    name = unique("watched")
    p = Pipeline()
    p.read_from(Sources.file_watcher(str(watched))).without_timestamps().write_to(Sinks.list(name))
    job = jet.new_job(p)
    status_is(job, JobStatus.RUNNING)  # every member has initialised: the watcher took its offsets
    with open(watched / "new.txt", "w") as f:
        f.write("one\ntwo\nthree-")  # the last line is not complete yet
    with open(watched / "old.txt", "a") as f:
        f.write("appended\n")
    wait_until(lambda: sorted(jet.get_list(name)) == ["appended", "one", "two"], WAIT_S,
               lambda: f"got {jet.get_list(name)}")
    with open(watched / "new.txt", "a") as f:
        f.write("and-a-half\n")
    wait_until(lambda: "three-and-a-half" in jet.get_list(name), WAIT_S, lambda: f"got {jet.get_list(name)}")
    job.cancel()
    status_is(job, JobStatus.FAILED)
    assert sorted(jet.get_list(name)) == ["appended", "one", "three-and-a-half", "two"]


def test_socket_source_reads_lines_until_the_server_closes(jet):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    lines = [f"line {i}" for i in range(500)]

    def serve():
        connection, _ = server.accept()
        with connection:
            connection.sendall("".join(f"{line}\n" for line in lines).encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        name = unique("socket")
        p = Pipeline()
        p.read_from(Sources.socket("127.0.0.1", port)).with_ingestion_timestamps().write_to(Sinks.list(name))
        jet.new_job(p).join(timeout=JOB_TIMEOUT_S)
        assert jet.get_list(name) == lines
    finally:
        server.close()
        thread.join(timeout=5)


def test_a_socket_server_that_never_ends_its_line_fails_the_job_instead_of_filling_the_member(jet):
    # Given a server that sends one endless line (no line break), 64 KiB at a time, until it is cut off
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    sent = []

    def serve():
        connection, _ = server.accept()
        with connection:
            try:
                while sum(sent) < 64 << 20:  # 64 MiB at most, however long the test waits
                    connection.sendall(b"x" * 65536)
                    sent.append(65536)
            except OSError:
                pass  # the source hung up: what we expect

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        # When a job reads it with a 256 KiB line limit
        p = Pipeline()
        p.read_from(Sources.socket("127.0.0.1", port, max_line_bytes=256 * 1024)).with_ingestion_timestamps() \
            .write_to(Sinks.list(unique("endless")))
        job = jet.new_job(p)
        # Then the job fails, naming the server and the limit, long before the server ran out
        with pytest.raises(JobFailedError, match=r"a line from 127.0.0.1:\d+ is longer than 262,144 bytes"):
            job.join(timeout=JOB_TIMEOUT_S)
        assert sum(sent) < 64 << 20
    finally:
        server.close()
        thread.join(timeout=5)


def _counter_source():
    def fill(state, buffer):
        for _ in range(50):
            if state["next"] >= 1000:
                buffer.close()
                return
            buffer.add(state["next"], timestamp=state["next"])
            state["next"] += 1
    return (SourceBuilder.timestamped_stream("counter", lambda ctx: {"next": 0})
            .fill_buffer_fn(fill)
            .create_snapshot_fn(lambda state: state["next"])
            .restore_snapshot_fn(lambda state, saved: state.update(next=saved[0]))
            .build())


def test_stream_source_builder_with_native_timestamps_feeds_windows(jet):
    name = unique("builder")
    p = Pipeline()
    (p.read_from(_counter_source()).with_native_timestamps(0)
      .window(WindowDefinition.tumbling(100)).aggregate(ops.counting())
      .write_to(Sinks.list(name)))
    jet.new_job(p).join(timeout=JOB_TIMEOUT_S)
    assert by_window(jet.get_list(name)) == [WindowResult(s, s + 100, None, 100) for s in range(0, 1000, 100)]
