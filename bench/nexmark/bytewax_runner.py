"""Runs a NEXMark query as a Bytewax dataflow on 2 processes of 1 worker each (the
bench's counterpart of 2 jetmq members), fed by the same generator, and returns what
jet_runner returns: events/s with the result summary, or latencies.

Each process runs `python -m bench.nexmark.bytewax_runner ARGS_JSON`, which builds the
flow (bench.nexmark.bytewax_queries) and joins the cluster with
`bytewax.testing.cluster_main(flow, addresses, proc_id)`; its sink writes the
worker's summary, latency samples and clock readings to a pickle file when the
input ends. Throughput counts from the first source partition being built to the
last sink closing, so the processes' start-up and imports are left out (jetmq's
figure counts from the job's submission, so this favours Bytewax slightly).
"""
from __future__ import annotations

import dataclasses
import json
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.nexmark.generator import GeneratorConfig, event_at
from bench.nexmark.harness import MAPS, merge_maps, merge_summaries

__all__ = ["PROCESSES", "latencies", "throughput"]

PROCESSES = 2
RUN_TIMEOUT_S = 600
UNPACED_WAIT_MS = 24 * 3600 * 1000
"""The event clocks' wait in unpaced runs: no item is ever late, windows close at the
end of the input."""
PACED_WAIT_MS = 100
"""The event clocks' wait in paced runs, for items of one key from both workers."""
FILL_BATCH = 256
_ROOT = Path(__file__).resolve().parents[2]
_started: list[float] = []


# ---- inside a Bytewax process -------------------------------------------------------------------

def _source(config: GeneratorConfig, count: int, paced: bool):
    from bytewax.inputs import DynamicSource, StatelessSourcePartition

    class Partition(StatelessSourcePartition):
        def __init__(self, index: int, workers: int) -> None:
            self.next, self.step = index, workers
            _started.append(time.time())

        def next_batch(self) -> list:
            if self.next >= count:
                raise StopIteration()
            out, position, step = [], self.next, self.step
            now = time.time() * 1000 if paced else None
            while len(out) < FILL_BATCH and position < count:
                if now is not None and config.time_of(position) > now:
                    break
                event = event_at(config, position)
                out.append((event.date_time, event))
                position += step
            self.next = position
            return out

        def next_awake(self):
            if paced and self.next < count:
                return datetime.fromtimestamp(config.time_of(self.next) / 1000, tz=timezone.utc)
            return None

    class Source(DynamicSource):
        def build(self, step_id: str, worker_index: int, worker_count: int):
            return Partition(worker_index, worker_count)

    return Source()


def _sink(mode: str, measure_from_ms: int | None, out_path: str):
    from bytewax.outputs import DynamicSink, StatelessSinkPartition

    class Partition(StatelessSinkPartition):
        def __init__(self, worker_index: int) -> None:
            self.path = f"{out_path}.{worker_index}"
            self.count = self.total = 0
            self.samples: list[float] = []
            self.map: dict = {}

        def write_batch(self, items: list) -> None:
            if measure_from_ms is not None:
                now = time.time() * 1000
                self.samples.extend(now - ts for ts, _row in items if ts >= measure_from_ms)
            if mode == "digest":
                crc = zlib.crc32
                self.count += len(items)
                self.total += sum(crc(repr(row).encode()) for _ts, row in items)
            else:
                self.map.update(row for _ts, row in items)

        def close(self) -> None:
            end = time.time()
            with open(self.path, "wb") as f:
                pickle.dump({"start": min(_started, default=end), "end": end, "summary": self.map if mode == "map" else (self.count, self.total),
                             "samples": self.samples}, f)

    class Sink(DynamicSink):
        def build(self, step_id: str, worker_index: int, worker_count: int):
            return Partition(worker_index)

    return Sink()


def _worker(args: dict) -> None:
    from bytewax.testing import cluster_main

    from bench.nexmark import bytewax_queries
    config = GeneratorConfig(**args["config"])
    paced = args["paced"]
    flow = bytewax_queries.build(args["query"], _source(config, args["count"], paced),
                                 _sink(args["mode"], args["measure_from_ms"], args["out"]),
                                 PACED_WAIT_MS if paced else UNPACED_WAIT_MS, paced, config)
    cluster_main(flow, args["addresses"], args["proc_id"], worker_count_per_proc=1)


# ---- the bench's side ---------------------------------------------------------------------------

def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _run(name: str, config: GeneratorConfig, count: int, paced: bool,
         measure_from_ms: int | None = None) -> tuple[float, Any, list[float]]:
    """(seconds, summary, latencies) of one run."""
    mode = "map" if name in MAPS else "digest"
    with tempfile.TemporaryDirectory(prefix="nexmark-bytewax-") as tmp:
        addresses = [f"127.0.0.1:{port}" for port in _free_ports(PROCESSES)]
        out = os.path.join(tmp, "result")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))}
        procs = []
        try:
            for proc_id in range(PROCESSES):
                args = {"query": name, "config": dataclasses.asdict(config), "count": count, "mode": mode,
                        "paced": paced,
                        "measure_from_ms": measure_from_ms, "out": out, "addresses": addresses,
                        "proc_id": proc_id}
                procs.append(subprocess.Popen([sys.executable, "-m", "bench.nexmark.bytewax_runner",
                                               json.dumps(args)], cwd=_ROOT, env=env))
            deadline = time.monotonic() + RUN_TIMEOUT_S
            for proc in procs:
                code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
                if code != 0:
                    raise RuntimeError(f"Bytewax {name}: process {proc.pid} exited with {code}")
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        parts = []
        for worker in range(PROCESSES):
            with open(f"{out}.{worker}", "rb") as f:
                parts.append(pickle.load(f))
    elapsed = max(p["end"] for p in parts) - min(p["start"] for p in parts)
    summaries = [p["summary"] for p in parts]
    summary = merge_maps(summaries) if mode == "map" else merge_summaries(summaries)
    return elapsed, summary, sorted(s for p in parts for s in p["samples"])


def throughput(name: str, config: GeneratorConfig, count: int) -> tuple[float, Any]:
    """(events/s, summary) of `name` over the first `count` events, unpaced."""
    elapsed, summary, _samples = _run(name, config, count, paced=False)
    return count / elapsed, summary


def latencies(name: str, config: GeneratorConfig, count: int, measure_from_ms: int) -> tuple[list[float], Any]:
    """(sorted latencies in ms of the results due from measure_from_ms, summary) of
    `name` over `count` events of a paced `config`."""
    _elapsed, summary, samples = _run(name, config, count, paced=True, measure_from_ms=measure_from_ms)
    return samples, summary


if __name__ == "__main__":
    _worker(json.loads(sys.argv[1]))
