"""A streaming pipeline for the dashboard's test and its screenshots: 500 numbers a second,
mapped, filtered and counted per one-second window, exactly-once with a snapshot a second.
Prints ``submitted <job id>``."""
import jetmq
from jetmq import JobConfig, ProcessingGuarantee
from jetmq.pipeline import Pipeline, Sinks, Sources, WindowDefinition
from jetmq.pipeline.aggregate import AggregateOperations as ops


def number(_timestamp_ms: int, sequence: int) -> int:
    return sequence


p = Pipeline()
(p.read_from(Sources.item_stream(500, number))
  .with_ingestion_timestamps()
  .map(lambda n: n * 3)
  .filter(lambda n: n % 2 == 0)
  .window(WindowDefinition.tumbling(1000))
  .aggregate(ops.counting())
  .write_to(Sinks.noop()))
config = JobConfig(processing_guarantee=ProcessingGuarantee.EXACTLY_ONCE, snapshot_interval_ms=1000)
job = jetmq.bootstrapped_instance().new_job(p, config)
print(f"submitted {job.id_string}", flush=True)
