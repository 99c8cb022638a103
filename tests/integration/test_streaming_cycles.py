"""100 submit/cancel cycles of a streaming job on one cluster: the members give back
what each job took (sockets, threads, file handles, buffers). Measured with psutil:
resident memory and open file descriptors of every member, before and after."""
import psutil
import pytest

import jetmq
from jetmq import JobConfig, JobStatus, ProcessingGuarantee
from jetmq.pipeline import Pipeline, Sinks, Sources, WindowDefinition
from jetmq.pipeline.aggregate import AggregateOperations as ops
from jetmq.testing import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

CYCLES = 100
WARM_UP_CYCLES = 5
MAX_RSS_GROWTH_MB = 30
MAX_FD_GROWTH = 20
WAIT_S = 30


def streaming_job(directory: str) -> Pipeline:
    """item_stream through a distributed window into an observable, and a file watcher
    into a list: a source on a clock, a shuffle, state, and file polling."""
    p = Pipeline()
    (p.read_from(Sources.item_stream(2000)).with_native_timestamps(0)
      .grouping_key(lambda e: e.sequence % 8)
      .window(WindowDefinition.tumbling(50)).aggregate(ops.counting())
      .write_to(Sinks.observable("cycles")))
    p.read_from(Sources.file_watcher(directory)).with_ingestion_timestamps().write_to(Sinks.list("cycles-lines"))
    return p


def member_usage(jet) -> dict[int, tuple[float, int]]:
    """pid -> (RSS in MB, open file descriptors) of every member."""
    usage = {}
    for member in jet.cluster().members:
        process = psutil.Process(member.pid)
        usage[member.pid] = (process.memory_info().rss / 2**20, process.num_fds())
    return usage


def test_submit_and_cancel_100_streaming_jobs_leaves_members_flat(tmp_path):
    watched = tmp_path / "watched"
    watched.mkdir()
    (watched / "lines.txt").write_text("a line\n")
    with jetmq.Cluster(members=2) as jet:
        pipeline = streaming_job(str(watched))
        config = JobConfig(processing_guarantee=ProcessingGuarantee.AT_LEAST_ONCE, snapshot_interval_ms=100)

        def cycle():
            job = jet.new_job(pipeline, config)
            wait_until(lambda: job.status is JobStatus.RUNNING, WAIT_S, lambda: f"job is {job.status}")
            job.cancel()
            wait_until(lambda: job.status is JobStatus.FAILED, WAIT_S, lambda: f"cancelled job is {job.status}")

        for _ in range(WARM_UP_CYCLES):
            cycle()
        before = member_usage(jet)
        for _ in range(CYCLES):
            cycle()
        after = member_usage(jet)

    growth = {pid: (after[pid][0] - rss, after[pid][1] - fds) for pid, (rss, fds) in before.items()}
    print(f"per member (RSS MB, fds) before {before} after {after}")
    for pid, (rss_growth, fd_growth) in growth.items():
        assert rss_growth < MAX_RSS_GROWTH_MB, f"member {pid} grew by {rss_growth:.1f} MB over {CYCLES} jobs"
        assert fd_growth < MAX_FD_GROWTH, f"member {pid} has {fd_growth} more open files after {CYCLES} jobs"
