"""What job metrics cost: the word count of bench/wordcount.py on 2 members with
metrics_enabled=True (members report every second, five times as often as by default)
against the same job with metrics_enabled=False, in one cluster, runs interleaved.

The engine's counters run either way (they are a few integer additions per batch);
what metrics_enabled adds is collecting and reporting them. The cost of the counters
themselves shows in the word count row against earlier runs of it.
"""
from __future__ import annotations

import time

import jetmq
from bench.report import Row, median
from bench.wordcount import LINES, WORDS_PER_LINE, _identity, _split, corpus
from jetmq import JobConfig
from jetmq.pipeline import Pipeline, Sinks, Sources
from jetmq.pipeline.aggregate import AggregateOperations as ops

RUNS = 5
INTERVAL_S = 1.0


def _pipeline(directory, sink: str) -> Pipeline:
    p = Pipeline()
    (p.read_from(Sources.files(str(directory), glob="part-*.txt"))
      .flat_map(_split)
      .grouping_key(_identity)
      .aggregate(ops.counting())
      .write_to(Sinks.map(sink)))
    return p


def run() -> list[Row]:
    directory = corpus()
    words = LINES * WORDS_PER_LINE
    speeds: dict[bool, list[float]] = {True: [], False: []}
    with jetmq.Cluster(members=2, metrics_collection_interval=INTERVAL_S) as jet:
        for index in range(RUNS):
            for enabled in (False, True) if index % 2 == 0 else (True, False):
                config = JobConfig(metrics_enabled=enabled, store_metrics_after_job_completion=True)
                start = time.perf_counter()
                job = jet.new_job(_pipeline(directory, f"counts-{index}-{enabled}"), config)
                job.join(timeout=600)
                speeds[enabled].append(words / (time.perf_counter() - start) / 1e6)
                if enabled:  # the counts are right: every line left the source
                    emitted = sum(m.value for m in job.get_metrics().filter("source", "true").get("emittedCount"))
                    assert emitted == LINES, f"the sources emitted {emitted:,} lines, not {LINES:,}"
    return [Row(f"word count, metrics on (reports every {INTERVAL_S:.0f} s), median of {RUNS}",
                median(speeds[True]), median(speeds[False]), "M/s", "the same job with metrics off", ">= 0.95x")]
