"""The NEXMark queries on a jetmq cluster: throughput (unpaced, checked against the
reference) and latency (paced at a fixed rate), with the summarising sink of
bench.nexmark.harness.

The sink is one processor per member on a local edge, as every jetmq sink: it keeps
its summary (or its latency samples) in the member and sends it to the cluster's
named list once, when its input completes, so measuring costs the master nothing.
"""
from __future__ import annotations

import itertools
import time
import zlib
from functools import partial
from typing import Any

from bench.nexmark import queries
from bench.nexmark.generator import GeneratorConfig, nexmark_source
from bench.nexmark.harness import MAPS, PARAMS, merge_maps, merge_summaries
from jetmq import JobConfig
from jetmq.core.processor import Processor
from jetmq.pipeline import Sink
from jetmq.pipeline.processors.sources import services_of

__all__ = ["ResultSink", "latencies", "throughput"]

JOB_TIMEOUT_S = 600
_names = itertools.count()


class ResultSink(Processor):
    """Reduces its input to a summary: "digest" (rows, crc sum) or "map" (the last
    value per key); with `measure_from_ms` (not None) it gets `(ts, item)` events and
    also keeps the latency of those with ts >= measure_from_ms (wall clock - ts, in
    ms). Sends `(init time, completion time, summary, latencies)` to the list
    `list_name` when the input completes."""

    def __init__(self, list_name: str, mode: str, measure_from_ms: int | None = None) -> None:
        self._list_name = list_name
        self._mode = mode
        self._measure_from = measure_from_ms
        self._count = 0
        self._total = 0
        self._map: dict = {}
        self._samples: list[float] = []
        self._services: Any = None

    def init_hook(self) -> None:
        self._services = services_of(self.context, "nexmark bench sink")
        self._started = time.time()

    def process(self, ordinal: int, inbox) -> None:
        items = inbox.take()
        if self._measure_from is not None:
            now = time.time() * 1000
            start = self._measure_from
            self._samples.extend(now - ts for ts, _item in items if ts >= start)
            items = [item for _ts, item in items]
        if self._mode == "digest":
            crc = zlib.crc32
            self._count += len(items)
            self._total += sum(crc(repr(row).encode()) for row in items)
        else:
            self._map.update(items)

    def complete(self) -> bool:
        summary = (self._count, self._total) if self._mode == "digest" else self._map
        self._services.list_add_all(self._list_name, [(self._started, time.time(), summary, self._samples)])
        return True


def _run(jet, name: str, config: GeneratorConfig, count: int, paced: bool,
         measure_from_ms: int | None = None) -> tuple[float, Any, list[float]]:
    """(seconds, summary, latencies) of one run."""
    list_name = f"nexmark-bench-{name}-{next(_names)}"
    mode = "map" if name in MAPS else "digest"
    sink = Sink(f"bench-sink({list_name})", partial(ResultSink, list_name, mode, measure_from_ms),
                receives_timestamps=measure_from_ms is not None)
    p = queries.build(queries.QUERIES[name], nexmark_source(config, count, paced=paced), sink, config,
                      **PARAMS.get(name, {}))
    jet.new_job(p, JobConfig(name=list_name)).join(timeout=JOB_TIMEOUT_S)
    parts = list(jet.get_list(list_name))
    elapsed = max(p[1] for p in parts) - min(p[0] for p in parts)
    summaries = [p[2] for p in parts]
    summary = merge_maps(summaries) if mode == "map" else merge_summaries(summaries)
    return elapsed, summary, sorted(itertools.chain.from_iterable(p[3] for p in parts))


def throughput(jet, name: str, config: GeneratorConfig, count: int) -> tuple[float, Any]:
    """(events/s, summary) of `name` over the first `count` events, unpaced: from the
    first sink processor's init (with the source's, before the job starts) to the
    last one's completion, as bytewax_runner counts."""
    elapsed, summary, _latencies = _run(jet, name, config, count, paced=False)
    return count / elapsed, summary


def latencies(jet, name: str, config: GeneratorConfig, count: int, measure_from_ms: int) -> tuple[list[float], Any]:
    """(sorted latencies in ms of the results due from measure_from_ms, summary) of
    `name` over `count` events of a paced `config` (see bench.nexmark.bench)."""
    _elapsed, summary, samples = _run(jet, name, config, count, paced=True, measure_from_ms=measure_from_ms)
    return samples, summary
