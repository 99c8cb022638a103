"""End-to-end latency: item_stream at 10,000 items/s -> map -> partitioned distributed
edge -> sink, on 2 members; quiet, and again while a CPU-bound batch job (the shuffle
benchmark's, endless) runs on the same cluster, sharing the members' loops.

Each item's latency is measured by the sink from the engine's own timestamps: the
wall clock when the sink receives the item minus the item's event timestamp (the
item_stream's native timestamp, the ms at which the item is due; the source emits
it as soon as the clock reaches it). The first WARM_UP_S seconds are left out.
Baseline, in the same run: a ZeroMQ request/reply round trip between two processes
on this host (p99 of 1,000 pings).
"""
from __future__ import annotations

import multiprocessing
import statistics
import time

import zmq

import jetmq
from bench.report import Row
from bench.shuffle import CountingSink, RangeSource, _first
from jetmq import JobConfig
from jetmq.core import DAG, Edge
from jetmq.pipeline import Pipeline, SinkBuilder, Sources

RATE = 10_000
WARM_UP_S = 2
MEASURE_S = 6
SAMPLES_LIST = "latency-samples"
PINGS = 1_000


def _create(context):
    return {"services": context.services, "samples": [], "reported": False}


def _receive(state, event):
    if RATE * WARM_UP_S <= event.sequence < RATE * (WARM_UP_S + MEASURE_S):
        state["samples"].append(time.time() * 1000 - event.timestamp)
    elif event.sequence >= RATE * (WARM_UP_S + MEASURE_S) and not state["reported"]:
        # one message at the end, so that reporting does not load the cluster while measuring
        state["services"].list_add_all(SAMPLES_LIST, state["samples"])
        state["reported"] = True


def _pipeline() -> Pipeline:
    p = Pipeline()
    (p.read_from(Sources.item_stream(RATE)).with_native_timestamps(0)
      .map(lambda event: event)
      .rebalance(lambda event: event.sequence)
      .write_to(SinkBuilder.sink_builder("latency-sink", _create).receive_fn(_receive).build()))
    return p


def _percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def _busy_dag() -> DAG:
    """The shuffle benchmark's job, endless: tuples through a partitioned distributed edge,
    as fast as the members go."""
    dag = DAG()
    source = dag.new_vertex("range-source", lambda: RangeSource(1 << 60))
    sink = dag.new_vertex("counting-sink", lambda: CountingSink("latency-busy-counts"))
    dag.edge(Edge.between(source, sink).distributed().partitioned(_first))
    return dag


def pipeline_latencies(under_load: bool = False) -> list[float]:
    with jetmq.Cluster(members=2) as jet:
        busy = jet.new_job(_busy_dag(), JobConfig(name="latency-load")) if under_load else None
        job = jet.new_job(_pipeline(), JobConfig(name="latency"))
        time.sleep(WARM_UP_S + MEASURE_S)
        wanted = RATE * MEASURE_S
        deadline = time.monotonic() + 60
        while len(samples := jet.get_list(SAMPLES_LIST)) < wanted and time.monotonic() < deadline:
            time.sleep(0.5)
        if busy is not None:
            assert busy.status.name == "RUNNING", f"the load job is {busy.status.name}"
            busy.cancel()
        job.cancel()
    return sorted(samples)


def _echo(endpoint: str) -> None:
    context = zmq.Context()
    socket = context.socket(zmq.REP)
    socket.bind(endpoint)
    for _ in range(PINGS + 100):
        socket.send(socket.recv())
    socket.close(linger=0)
    context.term()


def zmq_round_trips() -> list[float]:
    endpoint = "tcp://127.0.0.1:5799"
    server = multiprocessing.Process(target=_echo, args=(endpoint,), daemon=True)
    server.start()
    context = zmq.Context()
    socket = context.socket(zmq.REQ)
    socket.connect(endpoint)
    times = []
    try:
        for i in range(PINGS + 100):
            start = time.perf_counter()
            socket.send(b"ping")
            socket.recv()
            if i >= 100:  # warm-up: connection set-up
                times.append((time.perf_counter() - start) * 1000)
    finally:
        socket.close(linger=0)
        context.term()
        server.join(timeout=5)
    return sorted(times)


def run() -> list[Row]:
    pings = zmq_round_trips()
    baseline = _percentile(pings, 0.99)
    base_name = f"ZeroMQ round trip p99 ({PINGS:,} pings)"
    rows = []
    for under_load, suffix, target in ((False, "", "p99 <= 2 ms"), (True, ", batch job beside", "p99 <= 5 ms")):
        latencies = pipeline_latencies(under_load)
        name = f"latency item_stream {RATE:,}/s, 2 members{suffix}"
        rows += [Row(f"{name}, p{label}", _percentile(latencies, q), baseline, "ms", base_name,
                     target if label == "99" else "")
                 for label, q in (("50", 0.5), ("99", 0.99), ("99.9", 0.999))]
        print(f"latency{suffix} samples: {len(latencies):,}; mean {statistics.fmean(latencies):.2f} ms, "
              f"max {latencies[-1]:.2f} ms")
    print(f"ZeroMQ round trip p50 {_percentile(pings, 0.5):.3f} ms")
    return rows


if __name__ == "__main__":
    from bench.report import print_table
    print_table(run())
