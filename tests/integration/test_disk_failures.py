"""Real write failures: a full disk never commits a damaged snapshot, loses output or stops the master.

The data directory (or its snapshot store) is a small tmpfs the test mounts, then
fills with a file until writes fail with ENOSPC, while an exactly-once job runs.
No mocks of the store: the master meets the same errors it would on a full disk.
Needs root (CI is root); skipped with the reason where mounting is not allowed.
"""
import errno
import os
import resource
import subprocess
import time
from pathlib import Path

import pytest

import jetmq
from jetmq import JobConfig, ProcessingGuarantee
from jetmq.errors import JetError
from jetmq.core import DAG, Edge, Processor
from jetmq.job_status import JobStatus
from jetmq.testing import CommittingListSink, SequenceSource, sequence_dag, verify_sequences, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

LIST = "disk-failure-output"
SNAPSHOT_INTERVAL_MS = 200
WAIT_S = 30


def mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")


@pytest.fixture
def tmpfs():
    """``tmpfs(path, size)`` mounts a tmpfs at ``path``; every mount is undone at teardown."""
    mounted = []

    def mount(path: Path, size: str) -> Path:
        mount_tmpfs(path, size)
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(directory: Path) -> Path:
    """Write a file into ``directory`` until the file system is full; the file's path."""
    filler = directory / "filler"
    block = b"\0" * 65536
    with open(filler, "wb", buffering=0) as f:
        while True:
            try:
                f.write(block)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                break
    # the last few blocks of the file system go too, so that not even a small write succeeds
    with open(directory / "filler-tail", "wb", buffering=0) as f:
        for size in (16384, 4096, 1024, 256, 64, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                pass
    return filler


def free(directory: Path) -> None:
    for name in ("filler", "filler-tail"):
        (directory / name).unlink(missing_ok=True)


def start_cluster(data_dir: Path) -> jetmq.Cluster:
    return jetmq.Cluster(members=2, data_dir=data_dir, heartbeat_interval_ms=100, heartbeat_timeout_ms=1000,
                         respawn=False).start()


def exactly_once_job(cluster):
    config = JobConfig(name="on-a-full-disk", processing_guarantee=ProcessingGuarantee.EXACTLY_ONCE,
                       snapshot_interval_ms=SNAPSHOT_INTERVAL_MS)
    job = cluster.new_job(sequence_dag(LIST, keys=5, per_second=2000), config)
    wait_until(lambda: job.metrics()["last_snapshot_id"] >= 1, WAIT_S, "no snapshot committed")
    return job


def kill_a_member_then_check_exactly_once(cluster, job, last_snapshot_id: int) -> None:
    """SIGKILL a member: the job restarts from a snapshot after ``last_snapshot_id``; once it
    has taken more, cancel it and check every key's sequence came through exactly once."""
    os.kill(cluster.cluster().members[0].pid, 9)
    wait_until(lambda: job.metrics()["executions_started"] >= 2 and job.status is JobStatus.RUNNING, WAIT_S,
               lambda: f"the job did not restart: {job.status}")
    wait_until(lambda: job.metrics()["last_snapshot_id"] > last_snapshot_id + 2, WAIT_S,
               "no snapshot after the restart")
    job.cancel()
    wait_until(lambda: job.status is JobStatus.FAILED, WAIT_S, "the job did not end")
    verdict = verify_sequences(cluster.get_list(LIST))
    assert verdict.items > 1000 and verdict.exactly_once, verdict


def failed_snapshot_lines(data_dir: Path) -> list[str]:
    return [line for line in (data_dir / "logs" / "master.log").read_text().splitlines()
            if "snapshot" in line and " failed: " in line]


def test_a_full_snapshot_store_fails_snapshots_keeps_the_last_good_one_and_recovers(processes, tmp_path, tmpfs):
    # Given an exactly-once job whose snapshot store is a 4 MiB file system
    data_dir = tmp_path / "data"
    store = tmpfs(data_dir / "snapshots", "4m")
    cluster = start_cluster(data_dir)
    try:
        processes.add(cluster.master_pid)
        job = exactly_once_job(cluster)
        # When the store fills up
        fill(store)
        good = job.metrics()["last_snapshot_id"]
        wait_until(lambda: len(failed_snapshot_lines(data_dir)) >= 3, WAIT_S,
                   lambda: f"fewer than 3 snapshots failed: {failed_snapshot_lines(data_dir)}")
        # Then snapshots fail, each logged once with its cause, and none commits
        failures = failed_snapshot_lines(data_dir)
        assert all("No space left on device" in line for line in failures), failures
        ids = [line.split("snapshot ")[1].split(" ")[0] for line in failures]
        assert len(ids) == len(set(ids)), f"a snapshot's failure was logged more than once: {failures}"
        last = job.metrics()["last_snapshot_id"]
        assert last <= good + 1  # one snapshot may have committed while the disk was filling
        # and the last good snapshot is whole on disk, the job runs, the master answers
        assert (store / "jobs" / job.id_string / str(last) / "manifest.json").exists()
        assert job.status is JobStatus.RUNNING and cluster.cluster().size == 2
        # When the disk has room again
        free(store)
        # Then snapshots commit again
        wait_until(lambda: job.metrics()["last_snapshot_id"] > last, WAIT_S, "no snapshot committed after the disk "
                                                                                "had room again")
        # and a member's death restores the job from them with nothing lost or duplicated
        kill_a_member_then_check_exactly_once(cluster, job, last)
    finally:
        cluster.stop()


def test_a_full_data_directory_leaves_the_master_serving_and_nothing_lost_once_it_has_room(
        processes, tmp_path, tmpfs):
    # Given an exactly-once job whose whole data directory is a 16 MiB file system
    data_dir = tmpfs(tmp_path / "data", "16m")
    cluster = start_cluster(data_dir)
    try:
        processes.add(cluster.master_pid)
        job = exactly_once_job(cluster)
        # When the disk is full: job records, the structures log and snapshots all fail to write
        fill(data_dir)
        stuck_at = job.metrics()["last_snapshot_id"]
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # three seconds of failing writes, asked about every 100 ms
            # Then the master answers, the job runs, and no snapshot commits
            assert cluster.cluster().size == 2
            assert job.status is JobStatus.RUNNING
            time.sleep(0.1)
        assert job.metrics()["last_snapshot_id"] <= stuck_at + 1
        # and a new job is refused with the reason, leaving nothing behind
        with pytest.raises(JetError, match="cannot record the job"):
            cluster.new_job(sequence_dag("other", keys=1, per_second=10), JobConfig(name="refused"))
        assert [j.name for j in cluster.get_jobs()] == ["on-a-full-disk"]
        # When the disk has room again
        free(data_dir)
        stuck_at = job.metrics()["last_snapshot_id"]
        wait_until(lambda: job.metrics()["last_snapshot_id"] > stuck_at + 1, WAIT_S,
                   "snapshots did not commit after the disk had room again")
        # Then the output is exactly once, and so it stays after the master restarts on the data dir
        job.cancel()
        wait_until(lambda: job.status is JobStatus.FAILED, WAIT_S, "the job did not end")
        output = cluster.get_list(LIST)
        verdict = verify_sequences(output)
        assert verdict.items > 1000 and verdict.exactly_once, verdict
    finally:
        cluster.stop()
    again = start_cluster(data_dir)
    try:
        processes.add(again.master_pid)
        assert sorted(again.get_list(LIST)) == sorted(output)
        (restored,) = again.get_jobs("on-a-full-disk")
        assert restored.status is JobStatus.FAILED
    finally:
        again.stop()


class Ballast(Processor):
    """Passes items on, and keeps 256 KiB of incompressible state that every snapshot saves."""

    def init_hook(self):
        self.ballast = os.urandom(256 * 1024)

    def process(self, ordinal, inbox):
        while inbox:
            if not self.outbox.offer(inbox.peek()):
                return
            inbox.poll()

    def save_to_snapshot(self):
        return self.outbox.offer_to_snapshot(("ballast", self.context.global_index), self.ballast)

    def restore_from_snapshot(self, inbox):
        for _key, value in inbox.take():
            self.ballast = value


def test_state_the_file_size_limit_refuses_fails_the_snapshot_though_its_small_files_fit(processes, tmp_path):
    # Given an exactly-once job whose every snapshot holds a 256 KiB chunk
    cluster = start_cluster(tmp_path / "data")
    try:
        processes.add(cluster.master_pid)
        dag = DAG()
        source = dag.new_vertex("sequence-source", lambda: SequenceSource(5, 2000))
        ballast = dag.new_vertex("ballast", Ballast)
        sink = dag.new_vertex("committing-list-sink", lambda: CommittingListSink(LIST))
        dag.edge(Edge.between(source, ballast).distributed().partitioned(lambda item: item[0]))
        dag.edge(Edge.between(ballast, sink))
        job = cluster.new_job(dag, JobConfig(processing_guarantee=ProcessingGuarantee.EXACTLY_ONCE,
                                             snapshot_interval_ms=SNAPSHOT_INTERVAL_MS))
        wait_until(lambda: job.metrics()["last_snapshot_id"] >= 1, WAIT_S, "no snapshot committed")
        # When the members, which write their own state, may write no file past 128 KiB (the
        # snapshot's small files still fit: EFBIG, not ENOSPC)
        limit = 128 * 1024
        members = [m.pid for m in cluster.cluster().members]
        for pid in members:
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        good = job.metrics()["last_snapshot_id"]
        wait_until(lambda: len(failed_snapshot_lines(cluster.data_dir)) >= 3, WAIT_S,
                   lambda: f"fewer than 3 snapshots failed: {failed_snapshot_lines(cluster.data_dir)}")
        # Then no snapshot commits without its chunk: the last good one stays the restore point
        failures = failed_snapshot_lines(cluster.data_dir)
        assert all("File too large" in line for line in failures), failures
        last = job.metrics()["last_snapshot_id"]
        assert last <= good + 1
        assert job.status is JobStatus.RUNNING
        # When the limit is lifted, snapshots commit again, and a restore from one is exactly-once
        for pid in members:
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        wait_until(lambda: job.metrics()["last_snapshot_id"] > last, WAIT_S, "no snapshot after the limit went")
        kill_a_member_then_check_exactly_once(cluster, job, last)
    finally:
        cluster.stop()
