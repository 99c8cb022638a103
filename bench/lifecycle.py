"""Job management speed: `jet list-jobs` with 100 jobs, and submit-to-RUNNING latency.

Baselines, in the same run: `jet cluster` (the CLI's fixed cost: interpreter start,
imports, one request), and one client request round trip to the master.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time

import jetmq
from bench.report import Row
from jetmq import JobStatus
from jetmq.core import DAG, Edge, NoopProcessor, Processor

RUNS = 10
JOBS = 100


class IdleSource(Processor):
    """A streaming source that emits nothing: a job that runs until cancelled."""

    def complete(self):
        return False


def _streaming_dag() -> DAG:
    dag = DAG()
    dag.edge(Edge.between(dag.new_vertex("idle-source", IdleSource), dag.new_vertex("noop-sink", NoopProcessor)))
    return dag


def _cli_ms(address: str, key_file, *args) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "jetmq.cli.jet", "--addresses", address, "--key-file", str(key_file),
                    *args], check=True,
                   stdout=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


def _submit_to_running_ms(jet) -> float:
    start = time.perf_counter()
    job = jet.new_job(_streaming_dag())
    while job.status is not JobStatus.RUNNING:
        pass
    elapsed = (time.perf_counter() - start) * 1000
    job.cancel()
    return elapsed


def run() -> list[Row]:
    with jetmq.Cluster(members=2) as jet:
        round_trip = statistics.median(_timed(jet.cluster) for _ in range(100))
        submit = statistics.median(_submit_to_running_ms(jet) for _ in range(RUNS))
        for _ in range(JOBS):
            jet.new_job(_streaming_dag())
        cluster_cmd = statistics.median(_cli_ms(jet.address, jet.key_file, "cluster") for _ in range(RUNS))
        list_jobs = statistics.median(_cli_ms(jet.address, jet.key_file, "list-jobs") for _ in range(RUNS))
    return [
        Row(f"jet list-jobs, {JOBS} jobs, median of {RUNS}", list_jobs, cluster_cmd, "ms", "jet cluster (CLI start-up)",
            "~1x"),
        Row(f"submit to RUNNING, small streaming job, median of {RUNS}", submit, round_trip, "ms",
            "one request round trip", ""),
    ]


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000
