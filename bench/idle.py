"""What an idle streaming job costs: item_stream at 10 items/s -> map -> partitioned
distributed edge -> list sink, on 2 members; CPU time (user + system, psutil) of each
member process over MEASURE_S seconds, as % of one core, the busier member counted.

Baseline, in the same run: the same members with no job at all.
"""
from __future__ import annotations

import time

import psutil

import jetmq
from bench.report import Row
from jetmq import JobConfig
from jetmq.pipeline import Pipeline, Sinks, Sources

RATE = 10
MEASURE_S = 10.0
WARM_UP_S = 2.0
LIST = "idle-bench-items"


def _pipeline() -> Pipeline:
    p = Pipeline()
    (p.read_from(Sources.item_stream(RATE)).with_native_timestamps(0)
      .map(lambda event: event.sequence)
      .rebalance(lambda seq: seq)
      .write_to(Sinks.list(LIST)))
    return p


def _busiest_member_share(members: list[psutil.Process]) -> float:
    """% of a core the busier member used over MEASURE_S."""
    before = [m.cpu_times() for m in members]
    started = time.monotonic()
    time.sleep(MEASURE_S)
    elapsed = time.monotonic() - started
    after = [m.cpu_times() for m in members]
    return max(((a.user + a.system) - (b.user + b.system)) / elapsed * 100 for a, b in zip(after, before))


def run() -> list[Row]:
    with jetmq.Cluster(members=2) as jet:
        members = [psutil.Process(m.pid) for m in jet.cluster().members]
        time.sleep(WARM_UP_S)
        no_job = _busiest_member_share(members)
        job = jet.new_job(_pipeline(), JobConfig(name="idle-bench"))
        time.sleep(WARM_UP_S)
        assert jet.get_list(LIST), f"the idle job delivers nothing ({job.status.name})"
        with_job = _busiest_member_share(members)
        assert job.status.name == "RUNNING", f"the idle job is {job.status.name}"
        job.cancel()
    print(f"idle CPU per member: {with_job:.2f} % with the job, {no_job:.2f} % without")
    return [Row(f"CPU per member, idle streaming job ({RATE}/s, {MEASURE_S:.0f} s)", with_job, no_job, "%",
                "the same members, no job", "<= 1 % of a core")]


if __name__ == "__main__":
    from bench.report import print_table
    print_table(run())
