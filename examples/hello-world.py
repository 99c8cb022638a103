"""Hello world: the ten largest of 100 random numbers a second, per one-second window.

Jet's hello world for jetmq. Against a running cluster (`bin/jet-start -m 2 --daemon`):

    bin/jet submit -n hello-world examples/hello-world.py arg1 arg2

The job generates 100 random numbers a second, puts them in one-second tumbling
windows by the time they were generated, keeps each window's top 10, and publishes
them to the observable "top10_results", which this script prints as they arrive.
The job lives in the cluster: stopping this script (Ctrl-C) leaves it running
(`bin/jet list-jobs`, `bin/jet cancel hello-world`); submitting the script again
while it runs attaches to the running job instead of starting a second one.
"""
import random
import time

import jetmq
from jetmq import JobConfig, ProcessingGuarantee
from jetmq.pipeline import Pipeline, Sinks, Sources, WindowDefinition
from jetmq.pipeline.aggregate import AggregateOperations as ops

TOP = 10
RESULTS = "top10_results"


def random_number(_timestamp_ms: int, _sequence: int) -> int:
    return random.randrange(1_000_000)


def build_pipeline() -> Pipeline:
    p = Pipeline()
    (p.read_from(Sources.item_stream(100, random_number))
      .with_ingestion_timestamps()
      .window(WindowDefinition.tumbling(1000))
      .aggregate(ops.top_n(TOP))
      .write_to(Sinks.observable(RESULTS)))
    return p


def print_window(result) -> None:
    end = time.strftime("%H:%M:%S", time.localtime(result.end / 1000))
    print(f"Top {TOP} random numbers in the window ending at {end}: {result.value}", flush=True)


def main() -> None:
    jet = jetmq.bootstrapped_instance()
    jet.get_observable(RESULTS).add_observer(print_window, on_error=lambda e: None)  # join() reports the end
    config = JobConfig(name="hello-world", processing_guarantee=ProcessingGuarantee.EXACTLY_ONCE)
    print("Generating a stream of random numbers and calculating the top 10 every second", flush=True)
    try:
        jet.new_job_if_absent(build_pipeline(), config).join()
    except jetmq.CancellationError:
        print("The job was cancelled.", flush=True)


if __name__ == "__main__":
    main()
