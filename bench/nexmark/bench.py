"""`scripts/bench nexmark`: the NEXMark queries on 2 jetmq members beside the same
queries as Bytewax dataflows on 2 processes, in one run (see docs/benchmarks.md).

For each query:
1. throughput: the first EVENTS events (seed SEED, in order) as fast as the engine
   takes them, in events/s (and per core: the 2 members or processes share the
   machine's 2 cores); the result is checked against the plain-Python reference
   over the same events (bench.nexmark.harness), and a wrong result is reported as
   such, never as a figure;
2. latency: the generator paced at half that throughput (each engine at half its
   own), event time = wall time; p50 and p99 of (result received by the sink - the
   result's due time) over the results due after WARM_UP_S seconds, for MEASURE_S
   seconds.

The rows go into the bench table (jetmq against Bytewax as the baseline), a
per-query table with the per-core figures is printed, and everything is written as
JSON to RESULTS_FILE, from which `python -m bench.nexmark.chart` draws the chart.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import jetmq
from bench.nexmark import jet_runner, queries
from bench.nexmark.generator import GeneratorConfig, events
from bench.nexmark.harness import SEED, check, expected_summary, percentile
from bench.report import Row

__all__ = ["run"]

EVENTS = int(os.environ.get("NEXMARK_EVENTS", 200_000))
WARM_UP_S = 2.0
MEASURE_S = 4.0
CORES = 2
RESULTS_FILE = Path(os.environ.get("NEXMARK_RESULTS", Path(__file__).resolve().parents[2] / ".venv" /
                                   "nexmark-results.json"))
BYTEWAX = "Bytewax 0.21, 2 processes"
START_DELAY_MS = {"jetmq": 300, "bytewax": 1_500}
"""A paced run's first event is due this long after the run starts (jetmq: the job's
submission; Bytewax: starting its processes, Python and Bytewax imports and the
cluster's connections), so that start-up is not counted as latency."""


def _bytewax():
    """bench.nexmark.bytewax_runner, or None when Bytewax is not installed."""
    try:
        from bench.nexmark import bytewax_queries, bytewax_runner
    except ImportError as e:
        print(f"Bytewax figures left out: {e} (pip install -e '.[bench]')")
        return None, {}
    return bytewax_runner, bytewax_queries.QUERIES


def _latency(engine: str, measure, name: str, rate: int) -> dict:
    """A paced run at `rate`, its result checked too (over the paced run's events)."""
    base = int(time.time() * 1000) + START_DELAY_MS[engine]
    config = GeneratorConfig(seed=SEED, events_per_second=rate, base_time_ms=base)
    count = int(rate * (WARM_UP_S + MEASURE_S))
    samples, summary = measure(name, config, count, base + int(WARM_UP_S * 1000))
    error = check(name, summary, expected_summary(name, list(events(config, count))))
    if error:
        return {"rate": rate, "latency_error": error}
    return {"rate": rate, "samples": len(samples), "p50_ms": percentile(samples, 0.5),
            "p99_ms": percentile(samples, 0.99), "latency_error": None}


def _measure(engine: str, name: str, config: GeneratorConfig, expected, throughput, latencies) -> dict:
    rate, summary = throughput(name, config, EVENTS)
    error = check(name, summary, expected)
    result = {"engine": engine, "query": name, "events": EVENTS, "throughput": rate, "error": error}
    print(f"{name} {engine}: {rate:,.0f} events/s" + (f" WRONG RESULT: {error}" if error else ", result checked"),
          flush=True)
    if error is None:
        result.update(_latency(engine, latencies, name, max(1, int(rate / 2))))
        if result["latency_error"]:
            print(f"{name} {engine}: at {result['rate']:,} events/s WRONG RESULT: {result['latency_error']}")
        else:
            print(f"{name} {engine}: at {result['rate']:,} events/s p50 {result['p50_ms']:.1f} ms, "
                  f"p99 {result['p99_ms']:.1f} ms ({result['samples']:,} results), result checked", flush=True)
    return result


def measure_all(names: list[str]) -> list[dict]:
    config = GeneratorConfig(seed=SEED)
    start = time.perf_counter()
    stream = list(events(config, EVENTS))
    print(f"nexmark: {EVENTS:,} events generated in {time.perf_counter() - start:.1f} s (the references' input)")
    bytewax_runner, bytewax_names = _bytewax()
    results = []
    with jetmq.Cluster(members=2) as jet:
        for name in names:
            expected = expected_summary(name, stream)
            results.append(_measure("jetmq", name, config, expected, lambda *a: jet_runner.throughput(jet, *a),
                                    lambda *a: jet_runner.latencies(jet, *a)))
            if name in bytewax_names:
                results.append(_measure("bytewax", name, config, expected, bytewax_runner.throughput,
                                        bytewax_runner.latencies))
    return results


def _value(result: dict | None, field: str, scale: float = 1.0) -> float:
    if result is None or result.get("error") or field not in result:
        return float("nan")
    return result[field] * scale


def rows_of(results: list[dict]) -> list[Row]:
    by = {(r["engine"], r["query"]): r for r in results}
    rows = []
    for name in sorted({r["query"] for r in results}):
        jet, bw = by.get(("jetmq", name)), by.get(("bytewax", name))
        wrong = " (WRONG RESULT)" if jet and jet["error"] else ""
        base = BYTEWAX + (" (WRONG RESULT)" if bw and bw["error"] else "") if bw else "no Bytewax dataflow"
        rows.append(Row(f"nexmark {name} throughput, 2 members{wrong}", _value(jet, "throughput", 1e-3),
                        _value(bw, "throughput", 1e-3), "k/s", base))
        wrong = " (WRONG RESULT)" if jet and jet.get("latency_error") else ""
        base = base + (" (WRONG RESULT)" if bw and bw.get("latency_error") else "")
        for q in ("p50", "p99"):
            rows.append(Row(f"nexmark {name} latency {q} at half throughput{wrong}", _value(jet, f"{q}_ms"),
                            _value(bw, f"{q}_ms"), "ms", base))
    return rows


def print_details(results: list[dict]) -> None:
    print(f"\n{'query':<6} {'engine':<8} {'events/s':>10} {'per core':>10} {'paced at':>9} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'results':>8}")
    for r in results:
        if r["error"]:
            print(f"{r['query']:<6} {r['engine']:<8} WRONG RESULT: {r['error']}")
            continue
        if r["latency_error"]:
            print(f"{r['query']:<6} {r['engine']:<8} {r['throughput']:>10,.0f} {r['throughput'] / CORES:>10,.0f} "
                  f"{r['rate']:>9,}  paced run: WRONG RESULT: {r['latency_error']}")
            continue
        print(f"{r['query']:<6} {r['engine']:<8} {r['throughput']:>10,.0f} {r['throughput'] / CORES:>10,.0f} "
              f"{r['rate']:>9,} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['samples']:>8,}")


def run(names: list[str] | None = None) -> list[Row]:
    results = measure_all(names or sorted(queries.QUERIES))
    print_details(results)
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps({"time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                        "load_average": os.getloadavg(), "events": EVENTS, "results": results}, indent=1))
    print(f"nexmark results written to {RESULTS_FILE} (chart: python -m bench.nexmark.chart {RESULTS_FILE})")
    return rows_of(results)


if __name__ == "__main__":
    import sys

    from bench.report import print_table
    print_table(run(sys.argv[1:] or None))
