"""Snapshot overhead: a keyed job with EXACTLY_ONCE and 1 s snapshots against the same
job with NONE, in one run; and the duration and size of a snapshot of 1 million keys.
"""
from __future__ import annotations

import time

import jetmq
from bench.report import Row
from jetmq import JobConfig, JobStatus, ProcessingGuarantee
from jetmq.core import DAG, Edge, Processor
from jetmq.testing import SequenceSource, wait_until

ITEMS = 2_000_000
KEYS = 100_000
STATE_KEYS = 1_000_000


class KeyedCounter(Processor):
    """Counts items per key; the counts are its keyed state in snapshots."""

    def init_hook(self):
        self.counts = {}
        self._saving = None

    def process(self, ordinal, inbox):
        counts = self.counts
        get = counts.get
        for key, _seq in inbox.take():
            counts[key] = get(key, 0) + 1

    def save_to_snapshot(self):
        if self._saving is None:
            self._saving = iter(list(self.counts.items()))
        offer = self.outbox.offer_to_snapshot
        for key, value in self._saving:
            if not offer(key, value):
                self._pending = (key, value)
                return False
        self._saving = None
        return True

    def restore_from_snapshot(self, inbox):
        for key, value in inbox.take():
            self.counts[key] = value


class HoldingSource(SequenceSource):
    """A SequenceSource that, once at its limit, stays alive (the job keeps its state)."""

    def complete(self):
        super().complete()
        return False


def _first(item):
    return item[0]


def _dag(source) -> DAG:
    dag = DAG()
    src = dag.new_vertex("sequence-source", source)
    counter = dag.new_vertex("keyed-counter", KeyedCounter)
    dag.edge(Edge.between(src, counter).distributed().partitioned(_first))
    return dag


def _throughput(jet, guarantee) -> float:
    job = jet.new_job(_dag(lambda: SequenceSource(KEYS, 10**9, ITEMS)),
                      JobConfig(processing_guarantee=guarantee, snapshot_interval_ms=1000))
    start = time.perf_counter()
    job.join(timeout=600)
    return ITEMS / (time.perf_counter() - start)


def run() -> list[Row]:
    with jetmq.Cluster(members=2) as jet:
        none = _throughput(jet, ProcessingGuarantee.NONE)
        exactly_once = _throughput(jet, ProcessingGuarantee.EXACTLY_ONCE)
        job = jet.new_job(_dag(lambda: HoldingSource(STATE_KEYS, 10**9, STATE_KEYS)),
                          JobConfig(processing_guarantee=ProcessingGuarantee.EXACTLY_ONCE,
                                    snapshot_interval_ms=3_600_000))
        wait_until(lambda: job.status is JobStatus.RUNNING, 60, "the state job did not start")
        time.sleep(5)  # let the source emit its million keys (at full speed: ~2 s here)
        start = time.perf_counter()
        job.export_snapshot("bench-1m-keys")
        duration = time.perf_counter() - start
        size = jet.get_job_state_snapshot("bench-1m-keys").size_bytes
        job.cancel()
        jet.delete_job_state_snapshot("bench-1m-keys")
    return [
        Row("keyed job, EXACTLY_ONCE + 1 s snapshots", exactly_once / 1e6, none / 1e6, "M/s",
            "the same job with NONE", ">= 0.9x"),
        Row("snapshot of 1,000,000 keys: duration", duration * 1000, 1000, "ms", "1 s (reference)", ""),
        Row("snapshot of 1,000,000 keys: size", size / 2**20, STATE_KEYS * 16 / 2**20, "MB",
            "16 bytes per key (reference)", ""),
    ]
