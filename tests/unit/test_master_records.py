"""What the master reads back at start: bad records are quarantined, never fatal, never hiding good ones."""
import os
import struct
import zlib

import pytest

from jetmq.config import JobConfig
from jetmq.errors import JetError
from jetmq.ids import id_to_string
from jetmq.job_status import JobStatus
from jetmq.master.jobs import JobRecord
from jetmq.master.repository import JobRepository, encode
from jetmq.master.quarantine import Quarantine
from jetmq.master.store import NamedStore
from jetmq.protocol import pack_serialized

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
    from jetmq.protocol import unpack_serialized
    return {k.decode(): v.decode() for k, v in unpack_serialized(store.map_entries_blob(name))}


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
