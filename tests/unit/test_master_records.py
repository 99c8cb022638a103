"""What the master reads back at start: bad records are quarantined, never fatal, never hiding good ones."""
import os
import struct
import threading
import zlib

import pytest

from jetmq.config import JobConfig
from jetmq.errors import JetError
from jetmq.ids import id_to_string
from jetmq.job_status import JobStatus
from jetmq.master.io import IoWorker
from jetmq.master.jobs import JobRecord
from jetmq.master.repository import JobRepository, encode
from jetmq.master.snapshots import SnapshotCoordinator
from jetmq.master.quarantine import Quarantine
from jetmq.master.store import NamedStore
from jetmq.protocol import pack_serialized, unpack_serialized
from jetmq.storage import snapshots as snapshot_store
from jetmq.testing import wait_until

HEADER = struct.Struct("!II")


def frame(record) -> bytes:
    data = pack_serialized(list(record))
    return HEADER.pack(len(data), zlib.crc32(data)) + data


def map_change(name: str, **entries) -> tuple:
    return ("map", name, pack_serialized([(k.encode(), str(v).encode()) for k, v in entries.items()]))


def opened(path, quarantine) -> NamedStore:
    store = NamedStore()
    store.open_log(path, Quarantine(quarantine))
    return store


def map_of(store: NamedStore, name: str) -> dict:
    blobs = []
    store.read_map(name, blobs.append)
    (blob,) = blobs  # no change waits for an I/O thread here: the read is answered at once
    return {k.decode(): v.decode() for k, v in unpack_serialized(blob)}


def kept(quarantine) -> list[str]:
    return sorted(p.name for p in quarantine.iterdir() if not p.name.endswith(".reason.txt")) \
        if quarantine.exists() else []


def reasons(quarantine) -> str:
    return "".join(p.read_text() for p in sorted(quarantine.glob("*.reason.txt")))


# ---- structures.log ---------------------------------------------------------------------------


def test_a_bad_checksum_in_the_middle_of_the_log_hides_none_of_the_records_after_it(tmp_path):
    # Given a log of three records whose middle one has a flipped bit
    log_path, quarantine = tmp_path / "structures.log", tmp_path / "quarantine"
    first, middle, last = frame(map_change("m", a=1)), frame(map_change("m", b=2)), frame(map_change("m", c=3))
    damaged = bytearray(middle)
    damaged[len(damaged) // 2] ^= 0x40
    log_path.write_bytes(first + bytes(damaged) + last)
    # When the master replays it
    store = opened(log_path, quarantine)
    # Then the records before and after the damage are applied, the damaged bytes kept aside
    assert map_of(store, "m") == {"a": "1", "c": "3"}
    assert len(kept(quarantine)) == 1
    assert (quarantine / kept(quarantine)[0]).read_bytes() == bytes(damaged)
    assert "fail their checksum" in reasons(quarantine)
    # and the log holds the good records only, so the next start finds nothing wrong
    assert log_path.read_bytes() == first + last
    store.close()
    again = opened(log_path, tmp_path / "quarantine-2")
    assert map_of(again, "m") == {"a": "1", "c": "3"} and kept(tmp_path / "quarantine-2") == []


def test_a_record_that_checks_out_but_cannot_be_applied_is_skipped_whole(tmp_path):
    log_path, quarantine = tmp_path / "structures.log", tmp_path / "quarantine"
    bad_publish = ("publish", 7, 3, [map_change("m", x=1), ("list", "l", b"not a pickle")])
    wrong_type = ("map", 42, b"")
    log_path.write_bytes(frame(map_change("m", a=1)) + frame(bad_publish) + frame(wrong_type)
                         + frame(("drop-table", "m")) + frame(map_change("m", b=2)))
    store = opened(log_path, quarantine)
    # the publication applied nothing of itself (not even its good write), and counts as unpublished
    assert map_of(store, "m") == {"a": "1", "b": "2"}
    assert store.published_snapshot(7) == -1
    assert len(kept(quarantine)) == 3
    assert "cannot be applied" in reasons(quarantine) and "unknown kind" in reasons(quarantine)


def test_a_torn_last_record_is_cut_off_and_kept_aside(tmp_path):
    log_path, quarantine = tmp_path / "structures.log", tmp_path / "quarantine"
    whole, torn = frame(map_change("m", a=1)), frame(map_change("m", b=2))[:-5]
    log_path.write_bytes(whole + torn)
    store = opened(log_path, quarantine)
    assert map_of(store, "m") == {"a": "1"}
    assert log_path.read_bytes() == whole
    assert "torn last record" in reasons(quarantine)


def test_malformed_changes_from_a_peer_are_refused_before_they_are_logged(tmp_path):
    store = opened(tmp_path / "structures.log", tmp_path / "quarantine")
    with pytest.raises(JetError):
        store.map_put_all("m", pack_serialized([b"a key without a value"]))
    with pytest.raises(JetError):
        store.check_write("map", "m", b"garbage")
    with pytest.raises(JetError):
        store.check_write("drop", "m", pack_serialized([]))
    store.check_write("list", "l", pack_serialized([b"item"]))
    store.close()
    assert (tmp_path / "structures.log").read_bytes() == b""


def test_a_read_waits_for_the_changes_and_published_output_accepted_before_it(tmp_path):
    # Given a store whose I/O thread is busy with earlier work
    io = IoWorker("store")
    store = NamedStore(io)
    store.open_log(tmp_path / "structures.log", Quarantine(tmp_path / "quarantine"))
    busy = threading.Event()
    io.submit("earlier work", busy.wait)
    try:
        # When a sink's items and a snapshot's output are accepted, and a client then reads the list
        store.list_add_all("l", pack_serialized([b"a"]))
        store.publish(7, 3, lambda: [("list", "l", pack_serialized([b"b", b"c"]))])
        answers = []
        store.read_list("l", answers.append)
        # Then the read is not answered while the changes wait on the I/O thread
        io.drain()
        assert answers == []
        # and once they are applied it is answered with all of them, as is a read made after
        busy.set()
        wait_until(lambda: io.drain() or answers, 5, "the read was never answered")
        assert unpack_serialized(answers[0]) == [b"a", b"b", b"c"]
        store.read_list("l", answers.append)
        assert answers[1] == answers[0]
        assert store.published_snapshot(7) == 3
    finally:
        busy.set()
        io.stop(5)
        store.close()


def drain_until_idle(*workers: IoWorker) -> None:
    wait_until(lambda: [w.drain() for w in workers] and not any(w.busy for w in workers), 5,
               "the I/O threads did not finish their work")


def test_a_job_s_snapshots_are_deleted_only_after_the_output_queued_before_is_published(tmp_path):
    # Given a committed snapshot whose output is queued to be published, behind other disk work
    store_io, bulk_io = IoWorker("store"), IoWorker("bulk")
    named = NamedStore(store_io)
    snapshots = SnapshotCoordinator(tmp_path, lambda uuid, msg: None, store_io, bulk_io, named, None,
                                    lambda job, success: None, lambda job: None)
    job = JobRecord(7, JobConfig(name="cancelled"), b"dag bytes", 1_600_000_000_000)
    directory = snapshot_store.snapshot_dir(tmp_path, job.job_id, 3)
    directory.mkdir(parents=True)
    output = snapshot_store.write_completed_staged(directory, [(3, "list", "l", pack_serialized([b"x", b"y"]))])
    snapshot_store.commit(directory, 3, job.job_id, job.name, 1_600_000_000_000, [], output)
    busy = threading.Event()
    store_io.submit("earlier work", busy.wait)
    try:
        snapshots.publish(job, 3, after=-1)
        # When the job ends at once, and its snapshots are to be deleted
        snapshots.delete_all(job)
        drain_until_idle(bulk_io)
        busy.set()
        drain_until_idle(store_io, bulk_io)
        # Then the output was published whole, and the snapshots are gone after it
        answers = []
        named.read_list("l", answers.append)
        assert unpack_serialized(answers[0]) == [b"x", b"y"]
        assert not snapshot_store.job_dir(tmp_path, job.job_id).exists()
    finally:
        busy.set()
        store_io.stop(5)
        bulk_io.stop(5)


# ---- job records --------------------------------------------------------------------------------


def saved_job(repository: JobRepository, job_id: int, name: str) -> JobRecord:
    job = JobRecord(job_id, JobConfig(name=name), b"dag bytes", 1_600_000_000_000)
    repository.create(job.job_id, job.dag, encode(job))
    return job


@pytest.mark.parametrize("damage", [
    lambda text: text[: len(text) // 2],  # truncated
    lambda text: text.replace('"status": "RUNNING"', '"status": "RUNNNING"'),  # an unknown status
    lambda text: text.replace('"submission_time": 1600000000000', '"submission_time": "yesterday"'),  # a bad type
    lambda text: "[1, 2, 3]",  # not an object
])
def test_an_unreadable_job_record_is_quarantined_and_its_job_listed_as_failed_with_the_reason(tmp_path, damage):
    # Given two jobs on disk, one of whose records is damaged
    jobs_dir, quarantine = tmp_path / "jobs", tmp_path / "quarantine"
    repository = JobRepository(jobs_dir, quarantine=Quarantine(quarantine))
    good = saved_job(repository, 1 << 40, "good")
    bad = saved_job(repository, 2 << 40, "bad")
    bad.status = JobStatus.RUNNING
    repository.save(bad)
    path = jobs_dir / f"{id_to_string(bad.job_id)}.json"
    path.write_text(damage(path.read_text()))
    # When the master loads them
    loaded = {job.job_id: job for job in JobRepository(jobs_dir, quarantine=Quarantine(quarantine)).load_all()}
    # Then the good job is as it was, and the bad one is FAILED, saying why and where its bytes went
    assert loaded[good.job_id].status is JobStatus.NOT_RUNNING and loaded[good.job_id].dag == b"dag bytes"
    failed = loaded[bad.job_id]
    assert failed.status is JobStatus.FAILED
    assert "the job's record could not be read" in failed.failure_text and str(quarantine) in failed.failure_text
    assert sorted(n.split("-", 1)[1] for n in kept(quarantine)) == [f"{id_to_string(bad.job_id)}.dag",
                                                                     f"{id_to_string(bad.job_id)}.json"]
    # and the FAILED record is saved, so the next start lists it the same way without new quarantine
    again = {j.job_id: j for j in JobRepository(jobs_dir, quarantine=Quarantine(tmp_path / "q2")).load_all()}
    assert again[bad.job_id].status is JobStatus.FAILED and kept(tmp_path / "q2") == []


def test_a_file_that_is_no_job_record_is_quarantined_without_inventing_a_job(tmp_path):
    jobs_dir, quarantine = tmp_path / "jobs", tmp_path / "quarantine"
    jobs_dir.mkdir()
    (jobs_dir / "notes.json").write_text("{}")
    assert JobRepository(jobs_dir, quarantine=Quarantine(quarantine)).load_all() == []
    assert [n.split("-", 1)[1] for n in kept(quarantine)] == ["notes.json"]
    assert not os.path.exists(jobs_dir / "notes.json")
