"""Batch sources save their position: a batch job restored after a member loss
goes on where the snapshot left its sources, so its stateful stages count every
item once. (Before, Sources.items, list, map and files re-read everything on a
restore while the aggregation kept the snapshot's counts: 11,024 of 10,000 per key.)
"""
import os
import signal
import time

import pytest

from jetmq import AggregateOperations as ops
from jetmq import JobConfig, JobStatus, Pipeline, ProcessingGuarantee, Sinks, Sources
from jetmq.testing import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ITEMS = 100_000
KEYS = 10


def _slow(x):
    time.sleep(0.00002)  # ~3 s of work on each of 2 members, timer slack included
    return x


def _files(directory):
    directory.mkdir()
    per_file = ITEMS // 4
    for f in range(4):
        (directory / f"part-{f}.txt").write_text("".join(f"{f * per_file + i}\n" for i in range(per_file)))
    return Sources.files(str(directory))


@pytest.mark.parametrize("source", ["items", "files"])
def test_a_batch_job_restored_after_a_member_kill_counts_every_item_once(cluster, tmp_path, source):
    p = Pipeline()
    read = Sources.items(list(range(ITEMS))) if source == "items" else _files(tmp_path / "input")
    (p.read_from(read).map(int).map(_slow)
     .grouping_key(lambda x: x % KEYS).aggregate(ops.counting()).write_to(Sinks.map(f"batch-counts-{source}")))
    job = cluster.new_job(p, JobConfig(name=f"batch-restore-{source}", snapshot_interval_ms=200,
                                       processing_guarantee=ProcessingGuarantee.EXACTLY_ONCE))
    jobs_dir = cluster.data_dir / "snapshots" / "jobs" / job.id_string
    wait_until(lambda: any((d / "manifest.json").exists() for d in jobs_dir.glob("*")), 30,
               "no snapshot was committed")
    if job.status is not JobStatus.RUNNING:
        pytest.fail("the job ended before a member could be killed: make it slower")
    os.kill(cluster.cluster().members[1].pid, signal.SIGKILL)
    job.join(timeout=120)
    assert cluster.get_map(f"batch-counts-{source}") == {key: ITEMS // KEYS for key in range(KEYS)}
