"""Word count: the lines of the files in a directory, split into words, counted.

    python examples/word-count.py <directory>        # on an embedded 2-member cluster
    bin/jet submit examples/word-count.py <directory>  # on the running cluster

Runs the job and prints the ten most frequent words; the counts stay in the
cluster's map "counts". Run with `jet submit`, the job goes to the cluster the
CLI names; run with plain python, jetmq.bootstrapped_instance() starts an embedded
cluster for the script, as Jet's does.
"""
import sys
import time

import jetmq
from jetmq.pipeline import Pipeline, Sinks, Sources
from jetmq.pipeline.aggregate import AggregateOperations as ops


def build_pipeline(directory: str) -> Pipeline:
    p = Pipeline()
    (p.read_from(Sources.files(directory))
      .flat_map(lambda line: line.lower().split())
      .grouping_key(lambda word: word)
      .aggregate(ops.counting())
      .write_to(Sinks.map("counts")))
    return p


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    pipeline = build_pipeline(argv[1])
    jet = jetmq.bootstrapped_instance()
    started = time.monotonic()
    job = jet.new_job(pipeline)
    job.join()
    elapsed = time.monotonic() - started
    counts = jet.get_map("counts")
    top = sorted(counts.items(), key=lambda entry: (-entry[1], entry[0]))[:10]
    print(f"{sum(counts.values()):,} words, {len(counts):,} distinct, counted in {elapsed:.2f} s")
    for word, count in top:
        print(f"{count:>12,}  {word}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
