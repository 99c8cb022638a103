"""Snapshots on disk: lz4 chunks with a checksum each, made visible by their manifest.

    <data-dir>/snapshots/jobs/<job id>/<snapshot id>/chunk-00000.lz4 ... manifest.json
    <data-dir>/snapshots/named/<name>/chunk-00000.lz4 ... manifest.json

A chunk holds one vertex's state as members sent it: groups of (partition, pickled
list of (key, value), count); the master never unpickles keys or values. The manifest names
every chunk with its size and CRC-32 and is written last, by an atomic rename, so a
snapshot without a manifest never existed, and a damaged chunk is detected on load.
"""
from __future__ import annotations

import json
import os
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

import lz4.frame

from jetmq.errors import JetError
from jetmq.master.datadir import atomic_write
from jetmq.protocol import pack_serialized, unpack_serialized

MANIFEST = "manifest.json"
STAGED = "staged-output.bin"


class SnapshotDamagedError(JetError):
    """A snapshot is missing, or a chunk fails its checksum."""


@dataclass(frozen=True)
class SnapshotInfo:
    """What a manifest says about a snapshot."""

    path: Path
    snapshot_id: int
    job_id: int
    job_name: str | None
    creation_time: int  # epoch ms
    size_bytes: int  # compressed bytes of all chunks
    entry_count: int


class SnapshotWriteError(JetError):
    """A snapshot could not be written whole: it is not committed."""


class SnapshotWriter:
    """Writes one snapshot's chunks as they arrive, then its manifest.

    A write that fails (a full disk, an I/O error, a file size limit) is remembered,
    with its cause, and nothing more is written: the snapshot can no longer commit,
    and ``commit()`` says why. The writer never raises while chunks arrive, so one
    failed write costs the snapshot, not the master.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._chunks: list[dict] = []
        self._entries = 0
        self._staged_crc: int | None = None
        self.error: str | None = None  # the first failed write, if any
        self._guarded(self._make_directory)

    def _make_directory(self) -> None:
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)

    def _guarded(self, write, *args) -> None:
        if self.error is not None:
            return
        try:
            write(*args)
        except OSError as e:
            self.error = f"cannot write {self.path}: {e.strerror or e}"

    def add_chunk(self, vertex: str, entries_blob: bytes, entry_count: int) -> None:
        """A member's batch of a vertex's state: a packed list of (partition, pickled entries, count)."""
        self._guarded(self._write_chunk, vertex, entries_blob, entry_count)

    def _write_chunk(self, vertex: str, entries_blob: bytes, entry_count: int) -> None:
        data = lz4.frame.compress(pack_serialized([vertex.encode(), entries_blob]))
        name = f"chunk-{len(self._chunks):05d}.lz4"
        _write_durably(self.path / name, data)
        self._chunks.append({"file": name, "vertex": vertex, "size": len(data), "crc32": zlib.crc32(data),
                             "entries": entry_count})
        self._entries += entry_count

    def add_staged(self, writes: list) -> None:
        """The exactly-once sink output [(kind, name, data)] this snapshot covers."""
        data = pack_serialized(writes)
        self._guarded(_write_durably, self.path / STAGED, data)
        self._staged_crc = zlib.crc32(data)

    def commit(self, snapshot_id: int, job_id: int, job_name: str | None, creation_time: int) -> SnapshotInfo:
        """Write the manifest, the commit point; SnapshotWriteError if any write failed."""
        if self.error is not None:
            raise SnapshotWriteError(self.error)
        size = sum(c["size"] for c in self._chunks)
        manifest = {"snapshot_id": snapshot_id, "job_id": job_id, "job_name": job_name,
                    "creation_time": creation_time, "size_bytes": size, "entry_count": self._entries,
                    "chunks": self._chunks, "staged_crc32": self._staged_crc}
        try:
            atomic_write(self.path / MANIFEST, json.dumps(manifest).encode())
        except OSError as e:
            raise SnapshotWriteError(f"cannot write the manifest of {self.path}: {e.strerror or e}") from None
        return SnapshotInfo(self.path, snapshot_id, job_id, job_name, creation_time, size, self._entries)

    def abort(self) -> None:
        """Delete what was written, the manifest too (best effort: the disk may be failing)."""
        shutil.rmtree(self.path, ignore_errors=True)


def _write_durably(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def read_info(path: Path) -> SnapshotInfo:
    try:
        m = json.loads((Path(path) / MANIFEST).read_text())
        return SnapshotInfo(Path(path), m["snapshot_id"], m["job_id"], m["job_name"], m["creation_time"],
                            m["size_bytes"], m["entry_count"])
    except (OSError, ValueError, KeyError) as e:
        raise SnapshotDamagedError(f"snapshot at {path} has no readable manifest: {e}") from None


def load(path: Path) -> dict[str, list[tuple[int, bytes, bytes]]]:
    """Every vertex's entries; SnapshotDamagedError if any chunk is missing or damaged."""
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise SnapshotDamagedError(f"snapshot at {path} has no readable manifest: {e}") from None
    entries: dict[str, list] = {}
    for chunk in manifest["chunks"]:
        try:
            data = (path / chunk["file"]).read_bytes()
        except OSError as e:
            raise SnapshotDamagedError(f"chunk {chunk['file']} of snapshot {path} is missing: {e}") from None
        if len(data) != chunk["size"] or zlib.crc32(data) != chunk["crc32"]:
            raise SnapshotDamagedError(f"chunk {chunk['file']} of snapshot {path} is damaged (checksum mismatch)")
        vertex, blob = unpack_serialized(lz4.frame.decompress(data))
        entries.setdefault(vertex.decode(), []).extend(unpack_serialized(blob))
    return entries


def load_staged(path: Path) -> list:
    """The sink output saved with a snapshot; SnapshotDamagedError if it fails its checksum."""
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        crc = manifest.get("staged_crc32")
        if crc is None:
            return []
        data = (path / STAGED).read_bytes()
    except (OSError, ValueError) as e:
        raise SnapshotDamagedError(f"the output saved with snapshot {path} is unreadable: {e}") from None
    if zlib.crc32(data) != crc:
        raise SnapshotDamagedError(f"the output saved with snapshot {path} is damaged (checksum mismatch)")
    return unpack_serialized(data)


def split_for_members(entries: dict[str, list], partition_owners: tuple[int, ...], member_count: int) -> list[bytes]:
    """Per member, the packed entries it restores: broadcast ones and those of its partitions."""
    per_member: list[list] = [[] for _ in range(member_count)]
    for vertex, vertex_entries in entries.items():
        buckets: list[list] = [[] for _ in range(member_count)]
        for entry in vertex_entries:
            partition = entry[0]
            if partition < 0:
                for bucket in buckets:
                    bucket.append(entry)
            else:
                buckets[partition_owners[partition]].append(entry)
        for index, bucket in enumerate(buckets):
            per_member[index].append((vertex.encode(), bucket))
    return [pack_serialized(member_entries) for member_entries in per_member]


def delete(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def copy_as(source: Path, target: Path) -> None:
    """Make ``target`` a copy of the snapshot at ``source``, replacing any old one whole."""
    read_info(source)  # refuse to copy a snapshot without a manifest
    staging = target.with_name(f".{target.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    trash = target.with_name(f".{target.name}.old")
    if target.exists():
        os.replace(target, trash)
    os.replace(staging, target)
    shutil.rmtree(trash, ignore_errors=True)
