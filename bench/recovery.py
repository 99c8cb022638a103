"""Recovery: from SIGKILL of a member to the job RUNNING on the others with output flowing.

Median of 10 kills. The job (at-least-once, so output is visible as it flows) emits
2,000 items/s into an observable; the bench reads the observable as a client would.
Baseline, in the same run: a fresh start of the same job (submit to first output).
"""
from __future__ import annotations

import os
import signal
import statistics
import time

import jetmq
from bench.report import Row
from jetmq import JobConfig, JobStatus, ProcessingGuarantee
from jetmq import protocol as p
from jetmq.core import DAG, Edge, Processor
from jetmq import clusterkey
from jetmq.requester import Requester
from jetmq.testing import SequenceSource

KILLS = 10
OBSERVABLE = "recovery-bench"


class ObservableSink(Processor):
    def init_hook(self):
        self.context.services.observable_attach(OBSERVABLE, self.context.job_id)

    def process(self, ordinal, inbox):
        self.context.services.observable_publish(OBSERVABLE, inbox.take())


def _dag() -> DAG:
    dag = DAG()
    source = dag.new_vertex("sequence-source", lambda: SequenceSource(10, 2000))
    sink = dag.new_vertex("observable-sink", ObservableSink)
    dag.edge(Edge.between(source, sink).distributed().partitioned(lambda item: item[0]))
    return dag


class OutputWatcher:
    def __init__(self, address: str, key_file):
        self._requester = Requester(address, key=clusterkey.client_key(key_file))
        self.seq = 0

    def wait_for_new_output(self, timeout_s: float = 30) -> float:
        """Seconds until the observable has items beyond those seen so far."""
        start = time.perf_counter()
        while time.perf_counter() - start < timeout_s:
            reply = self._requester.request(p.GetObservable(OBSERVABLE, self.seq, 100_000))
            count = len(p.unpack_serialized(reply.items))
            if count:
                self.seq = reply.first_seq + count
                return time.perf_counter() - start
        raise TimeoutError("no output")


def run() -> list[Row]:
    samples = []
    # no respawn: each kill is one loss and one restart (a replacement would add a scale-up restart)
    with jetmq.Cluster(members=KILLS + 1, respawn=False) as jet:
        watcher = OutputWatcher(jet.address, jet.key_file)
        start = time.perf_counter()
        job = jet.new_job(_dag(), JobConfig(processing_guarantee=ProcessingGuarantee.AT_LEAST_ONCE,
                                            snapshot_interval_ms=500))
        watcher.wait_for_new_output()
        fresh_start = time.perf_counter() - start
        for _ in range(KILLS):
            time.sleep(1.0)  # let the job run a while between kills
            executions = job.metrics()["executions_started"]
            victim = jet.cluster().members[-1]
            watcher.wait_for_new_output()  # drain what was already there
            killed_at = time.perf_counter()
            os.kill(victim.pid, signal.SIGKILL)
            while job.metrics()["executions_started"] == executions or job.status is not JobStatus.RUNNING:
                pass
            watcher.wait_for_new_output()
            samples.append(time.perf_counter() - killed_at)
        job.cancel()
    return [Row(f"recovery after a member SIGKILL, median of {KILLS}", statistics.median(samples) * 1000,
                fresh_start * 1000, "ms", "a fresh start of the same job", "<= 1 s")]
