"""An idle job costs its members next to nothing (they sleep until a source's next item
is due), and Job.join() and observables hear of a change when it happens (the master
pushes it), not at the next poll."""
import time
from pathlib import Path

import psutil
import pytest

import jetmq
from jetmq import JobStatus, clusterkey, serialization
from jetmq.config import HEARTBEAT_INTERVAL_MS
from jetmq import protocol as p_
from jetmq.core import DAG, Edge, NoopProcessor
from jetmq.pipeline import Pipeline, Sinks, Sources
from jetmq.requester import Requester
from jetmq.testing import SequenceSource, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

WAIT_S = 30
MEASURE_S = 5.0
#: A loose bound for a test on a shared machine (the bench holds the tight one, 1 %).
MAX_IDLE_CPU = 0.05
#: How late join() may return after the master recorded the job's completion.
MAX_JOIN_LAG_MS = 50


@pytest.fixture(scope="module")
def jet():
    with jetmq.Cluster(members=2) as cluster:
        yield cluster


def idle_stream(list_name: str) -> Pipeline:
    p = Pipeline()
    (p.read_from(Sources.item_stream(10)).with_native_timestamps(0)
      .map(lambda event: event.sequence)
      .rebalance(lambda seq: seq)
      .write_to(Sinks.list(list_name)))
    return p


def wakes(pid: int) -> dict[int, int]:
    """Voluntary context switches (a thread going to sleep, so later waking) of each of
    the process's threads but ZeroMQ's own, by thread id."""
    counts = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            if (task / "comm").read_text().startswith("ZMQbg"):
                continue
            status = (task / "status").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        counts[int(task.name)] = int(status.split("voluntary_ctxt_switches:")[1].split()[0])
    return counts


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts wake-ups in Linux's /proc")
def test_a_member_with_no_job_sleeps_but_for_its_heartbeats(jet):
    # Given the cluster's members with no job running
    wait_until(lambda: all(j.status.is_terminal for j in jet.get_jobs()), WAIT_S, "a job is still running")
    pids = [m.pid for m in jet.cluster().members]
    # When 3 s go by
    before = [wakes(pid) for pid in pids]
    started = time.monotonic()
    time.sleep(3.0)  # the measurement window itself, not a synchronisation
    elapsed = time.monotonic() - started
    after = [wakes(pid) for pid in pids]
    # Then the main loop and the ZAP handler did not wake at all (no tick: nothing to do),
    # and the master link only for heartbeats (one sent, one received per interval)
    heartbeats = 2 * elapsed / (HEARTBEAT_INTERVAL_MS / 1000)
    for pid, b, a in zip(pids, before, after):
        woke = {tid: a[tid] - b.get(tid, 0) for tid in a}
        assert woke[pid] <= 2, f"member {pid}'s main loop woke {woke[pid]} times in {elapsed:.1f} s with nothing to do"
        assert sum(woke.values()) <= heartbeats + 4, \
            f"member {pid}'s threads woke {woke} in {elapsed:.1f} s: more than its {heartbeats:.0f} heartbeats"


def test_an_idle_streaming_job_costs_its_members_under_5_percent_of_a_core(jet):
    # Given a streaming job of 10 items a second on 2 members, running and delivering
    job = jet.new_job(idle_stream("idle-items"))
    try:
        wait_until(lambda: len(jet.get_list("idle-items")) >= 5, WAIT_S,
                   lambda: f"the job delivers no items (it is {job.status.name})")
        members = [psutil.Process(m.pid) for m in jet.cluster().members]
        assert len(members) == 2
        # When 5 s go by
        before = [m.cpu_times() for m in members]
        delivered_before = len(jet.get_list("idle-items"))
        started = time.monotonic()
        time.sleep(MEASURE_S)  # the measurement window itself, not a synchronisation
        elapsed = time.monotonic() - started
        after = [m.cpu_times() for m in members]
        delivered = len(jet.get_list("idle-items")) - delivered_before
        # Then the job went on, and each member used less than 5 % of a core
        assert job.status is JobStatus.RUNNING
        assert delivered >= 10 * MEASURE_S * 0.8, f"only {delivered} items in {MEASURE_S} s"
        shares = [((a.user + a.system) - (b.user + b.system)) / elapsed for a, b in zip(after, before)]
        assert all(share < MAX_IDLE_CPU for share in shares), \
            f"members used {', '.join(f'{s:.1%}' for s in shares)} of a core"
    finally:
        job.cancel()
        wait_until(lambda: job.status.is_terminal, WAIT_S, "the job did not end after cancel")


class CountingRequests:
    """Counts the requests a client sends (wraps its requester's request method)."""

    def __init__(self, job):
        self.count = 0
        self._request = job._requester.request
        job._requester.request = self

    def __call__(self, *args, **kwargs):
        self.count += 1
        return self._request(*args, **kwargs)


def test_join_returns_within_50_ms_of_the_job_completing_without_polling(jet):
    # Given a job that completes about 1.5 s after it starts
    dag = DAG()
    source = dag.new_vertex("paced", lambda: SequenceSource(keys=1, per_second=10, limit=15))
    dag.edge(Edge.between(source, dag.new_vertex("sink", NoopProcessor)))
    client = jetmq.connect(jet.address, key_file=jet.key_file)
    try:
        job = client.new_job(dag)
        requests = CountingRequests(job)
        # When the client joins it
        job.join(timeout=WAIT_S)
        returned_ms = time.time() * 1000
        # Then join returns as soon as the master has completed the job, having asked a few
        # times only (the master pushed the change; polling every 20 ms would ask ~75 times)
        requests_made = requests.count
        summary = client.get_job(job.id)._refresh()
        assert summary.status == "COMPLETED"
        lag_ms = returned_ms - summary.completion_time
        assert 0 <= lag_ms <= MAX_JOIN_LAG_MS, f"join returned {lag_ms:.0f} ms after the completion"
        assert requests_made <= 5, f"join sent {requests_made} requests"
    finally:
        client.close()


def test_a_waiting_observable_read_is_answered_when_the_job_publishes(jet):
    # Given a read of an observable that nothing has written to yet, held by the master
    requester = Requester(jet.address, key=clusterkey.load(jet.key_file))
    p = Pipeline()
    p.read_from(Sources.item_stream(20)).with_native_timestamps(0).map(lambda e: e.sequence) \
        .write_to(Sinks.observable("pushed"))
    job = None
    try:
        requester.request(p_.GetObservable("pushed", 0, 1))  # connected: the next request is the waiting one
        job = jet.new_job(p)
        # When the job publishes its first items
        reply = requester.request(p_.WaitObservable("pushed", 0, 1000, 20_000), timeout_s=30)
        # Then that one request brings them (a plain read would have come back empty at once)
        items = [serialization.loads(item) for item in p_.unpack_serialized(reply.items)]
        assert reply.first_seq == 0 and items and items == list(range(len(items))), items
        # and a reader iterating the observable gets every item, in order
        seen = []
        jet.get_observable("pushed").add_observer(seen.append)
        wait_until(lambda: len(seen) >= 20, WAIT_S, lambda: f"{len(seen)} items observed")
        assert seen[:20] == list(range(20))
    finally:
        requester.close()
        if job is not None:
            job.cancel()
            wait_until(lambda: job.status.is_terminal, WAIT_S, "the job did not end after cancel")
