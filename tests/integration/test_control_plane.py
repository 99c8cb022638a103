"""The master is a pure control plane: state goes between members and the store, never
through its loop, and it answers clients in time whatever the size of the jobs' state.

The jobs here hold millions of keys in a keyed counter (its counts are its state, in
every snapshot); the master's own counters (``master_stats()``) tell what its loop
carried and how long its turns took.
"""
import os
import threading
import time

import pytest

import jetmq
from jetmq import JobConfig, JobStatus, ProcessingGuarantee
from jetmq.core import DAG, BroadcastKey, Edge, Processor
from jetmq.testing import wait_until

pytestmark = pytest.mark.integration

WAIT_S = 120


class KeySource(Processor):
    """Emits 0 .. keys-1 once (processor 0 only), then stays alive: the job keeps its state."""

    def __init__(self, keys: int):
        self.keys = keys

    def init_hook(self):
        self.next = 0 if self.context.global_index == 0 else self.keys

    def complete(self):
        if self.next < self.keys:
            end = min(self.keys, self.next + 65536)
            self.next += self.outbox.offer_many(range(self.next, end))
        return False

    def save_to_snapshot(self):
        return self.outbox.offer_to_snapshot(BroadcastKey(self.context.global_index), self.next)

    def restore_from_snapshot(self, inbox):
        for key, value in inbox.take():
            if key == BroadcastKey(self.context.global_index):
                self.next = value


class KeyCounter(Processor):
    """Counts items per key; the counts are its keyed state, saved in every snapshot."""

    def init_hook(self):
        self.counts = {}
        self._saving = None  # the entries being offered, and how many are taken

    def process(self, ordinal, inbox):
        counts = self.counts
        for key in inbox.take():
            counts[key] = counts.get(key, 0) + 1

    def save_to_snapshot(self):
        if self._saving is None:
            self._saving = [list(self.counts.items()), 0]
        entries, taken = self._saving
        taken += self.outbox.offer_to_snapshot_many(entries, taken)
        if taken < len(entries):
            self._saving[1] = taken
            return False
        self._saving = None
        return True

    def restore_from_snapshot(self, inbox):
        counts = self.counts
        for key, value in inbox.take():
            counts[key] = value


def _identity(item):
    return item


def keyed_state_dag(keys: int) -> DAG:
    dag = DAG()
    source = dag.new_vertex("key-source", lambda: KeySource(keys))
    counter = dag.new_vertex("key-counter", KeyCounter)
    dag.edge(Edge.between(source, counter).distributed().partitioned(_identity))
    return dag


def test_a_restore_reads_no_state_through_the_master(cluster):
    # Given an exactly-once job with a million keys in state, committed in a snapshot
    keys = 1_000_000
    job = cluster.new_job(keyed_state_dag(keys), JobConfig(processing_guarantee=ProcessingGuarantee.EXACTLY_ONCE,
                                                           snapshot_interval_ms=500))
    first = wait_until(lambda: job.metrics()["last_snapshot_id"] >= 1 and job.metrics()["last_snapshot_id"],
                       WAIT_S, "no snapshot committed")
    snapshot_dir = cluster.data_dir / "snapshots" / "jobs" / job.id_string
    wait_until(lambda: job.metrics()["last_snapshot_id"] > first, WAIT_S, "no later snapshot")  # the full state
    size = sum(f.stat().st_size for d in snapshot_dir.iterdir() if d.is_dir() for f in d.iterdir())
    assert size > 3_000_000, f"the snapshot holds only {size} bytes"
    before = cluster.master_stats()
    # When a member is killed, and the job restores from that snapshot on the other
    os.kill(cluster.cluster().members[0].pid, 9)
    wait_until(lambda: job.metrics()["executions_started"] == 2 and job.status is JobStatus.RUNNING, WAIT_S,
               lambda: f"the job did not restart: {job.status}")
    restored = job.metrics()["last_snapshot_id"]
    wait_until(lambda: job.metrics()["last_snapshot_id"] > restored, WAIT_S, "no snapshot after the restore")
    after = cluster.master_stats()
    # Then the master carried none of the state's bytes, either way: only messages about it
    carried_out = after["bytes_to_members"] - before["bytes_to_members"]
    carried_in = after["bytes_from_members"] - before["bytes_from_members"]
    assert carried_out < size / 20, f"the master sent {carried_out:,} bytes to members for {size:,} of state"
    assert carried_in < size / 20, f"the master took {carried_in:,} bytes from members for {size:,} of state"
    assert after["largest_message_to_members"] < 200_000
    job.cancel()


class Poller(threading.Thread):
    """Asks the master for the cluster's state every 100 ms and times each answer."""

    def __init__(self, address: str, key_file):
        super().__init__(daemon=True)
        self.address = address
        self.key_file = key_file
        self.stop_event = threading.Event()
        self.times: list[float] = []
        self.sizes: list[int] = []

    def run(self):
        with jetmq.JetClient(self.address, key_file=self.key_file) as client:
            while not self.stop_event.wait(0.1):
                start = time.monotonic()
                self.sizes.append(client.cluster().size)
                self.times.append(time.monotonic() - start)


@pytest.mark.timeout(400)
def test_the_master_answers_in_time_while_ten_million_keys_are_snapshotted_every_second(processes, tmp_path):
    # Given a 2-member cluster and a job with 10,000,000 keys of state, snapshotted every second
    keys = 10_000_000
    with jetmq.Cluster(members=2, data_dir=tmp_path / "data") as cluster:
        processes.add(cluster.master_pid)
        job = cluster.new_job(keyed_state_dag(keys),
                              JobConfig(processing_guarantee=ProcessingGuarantee.EXACTLY_ONCE,
                                        snapshot_interval_ms=1000))
        wait_until(lambda: job.metrics()["last_snapshot_id"] >= 1, 240, "no snapshot committed")
        members = {m.uuid for m in cluster.cluster().members}
        # When a client asks the master for the cluster's state every 100 ms for 40 s
        poller = Poller(cluster.address, cluster.key_file)
        poller.start()
        first = job.metrics()["last_snapshot_id"]
        time.sleep(40)  # the observation window itself (the poller measures; nothing to wait for)
        poller.stop_event.set()
        poller.join(10)
        # Then no answer took over 300 ms, no member was lost, and snapshots went on
        slowest = max(poller.times)
        assert len(poller.times) > 300, len(poller.times)
        assert slowest < 0.3, f"the slowest answer took {slowest * 1000:.0f} ms"
        assert {m.uuid for m in cluster.cluster().members} == members and set(poller.sizes) == {2}
        assert job.metrics()["last_snapshot_id"] >= first + 5
        stats = cluster.master_stats()
        print(f"[measured] master loop: longest turn {stats['longest_turn_ms']} ms ({stats['longest_turn_step']}), "
              f"{stats['slow_turns']} of {stats['turns']} turns over 50 ms; slowest answer {slowest * 1000:.0f} ms")
        # and a named snapshot of that state exports in under 10 s
        start = time.monotonic()
        job.export_snapshot("ten-million-keys")
        took = time.monotonic() - start
        print(f"[measured] export of 10,000,000 keys: {took:.1f} s")
        assert took < 10
        snapshot = cluster.get_job_state_snapshot("ten-million-keys")
        assert snapshot is not None and snapshot.size_bytes > 10_000_000
        job.cancel()
