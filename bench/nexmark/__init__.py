"""NEXMark on jetmq (issue #18): the event generator, the queries as pipelines, and
plain-Python references over the same events.

    import jetmq
    from jetmq.pipeline import Sinks
    from bench.nexmark import queries, reference
    from bench.nexmark.generator import GeneratorConfig, events, nexmark_source

    config = GeneratorConfig(seed=7)
    p = queries.build(queries.q5, nexmark_source(config, 100_000), Sinks.list("q5"), config,
                      window_ms=2_000, period_ms=1_000)
    with jetmq.Cluster(members=2) as jet:
        jet.new_job(p).join()
        assert sorted(jet.get_list("q5")) == sorted(reference.q5(list(events(config, 100_000)),
                                                                 window_ms=2_000, period_ms=1_000))

Modules: model (the Person, Auction and Bid tuples), generator (the stream, and the
jetmq source), queries (q0-q8 as pipelines), reference (q0-q8 in plain Python); the
bench (`scripts/bench nexmark`, docs/benchmarks.md): bench (the run and its table),
harness (result summaries, the check, percentiles), jet_runner and bytewax_runner
(one query on each engine), bytewax_queries (q0-q8 as Bytewax dataflows), chart.
The members import these modules by name: run from the repository's root (as the
tests and scripts/bench do), or put it on PYTHONPATH.
"""


def run():
    """The NEXMark bench (python -m bench nexmark): see bench.nexmark.bench."""
    from bench.nexmark.bench import run as run_bench
    return run_bench()
