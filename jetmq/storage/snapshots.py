"""Snapshots on disk: members write and read their state themselves; the master commits.

    <store>/jobs/<job id>/<snapshot id>/   a job's own snapshots
    <store>/jobs/<job id>/exec-<id>/       output of members whose part of an execution completed
    <store>/named/<name>/                  exported (named) snapshots

In a snapshot's directory, member ``i`` writes

    m<i>.state    segments, one per (vertex, partition): lz4 of a packed list of pickles
    m<i>.index    JSON: for each segment its vertex, partition, offset, length, CRC-32, entries
    m<i>.staged   the exactly-once sink output the snapshot covers: packed (epoch, kind, name, data)

and reports only their names, sizes and checksums to the master, which writes

    completed.staged   output of members whose part completed before this snapshot
    manifest.json      every file with its size and CRC-32, written last by an atomic
                       rename: the commit point (a snapshot without it never existed)

On restore each member reads every index, then only the segments of the partitions
it now owns (and the broadcast ones, partition -1), each checked against its CRC, so a
job restored on a different number of members gets its state redistributed, and the
master never touches a byte of state. Nothing here unpickles a user's object: keys and
values stay pickles until a processor restores them.
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
from jetmq.ids import id_to_string
from jetmq.protocol import FileRef, SnapshotFiles, pack_serialized, unpack_serialized
from jetmq.storage.files import DamagedFileError, atomic_write, read_checked, write_checked

MANIFEST = "manifest.json"
COMPLETED_STAGED = "completed.staged"
#: The manifest's format; older manifests (chunks sent through the master) are not read.
FORMAT = 2


class SnapshotDamagedError(JetError):
    """A snapshot is missing, or one of its files fails its checksum."""


# ---------------------------------------------------------------------------------
# Where things are


def job_path(job_id: int) -> str:
    """A job's directory, relative to the store's root."""
    return f"jobs/{id_to_string(job_id)}"


def snapshot_path(job_id: int, snapshot_id: int) -> str:
    return f"{job_path(job_id)}/{snapshot_id}"


def execution_path(job_id: int, execution_id: int) -> str:
    return f"{job_path(job_id)}/exec-{id_to_string(execution_id)}"


def job_dir(root: Path, job_id: int) -> Path:
    return Path(root) / job_path(job_id)


def snapshot_dir(root: Path, job_id: int, snapshot_id: int) -> Path:
    return Path(root) / snapshot_path(job_id, snapshot_id)


def execution_dir(root: Path, job_id: int, execution_id: int) -> Path:
    return Path(root) / execution_path(job_id, execution_id)


def named_root(root: Path) -> Path:
    return Path(root) / "named"


# ---------------------------------------------------------------------------------
# A member writes its part


def _stored(store, directory: str, name: str, data: bytes) -> FileRef:
    store.write(f"{directory}/{name}", data)
    return FileRef(name, len(data), zlib.crc32(data))


class MemberSnapshotWriter:
    """Member ``member_index``'s part of one snapshot: its state and its staged output,
    written through ``store`` (jetmq/storage/access.py) into the snapshot's ``directory``
    (relative to the store's root). Raises OSError when a write fails; the member then
    reports the snapshot failed."""

    def __init__(self, store, directory: str, member_index: int):
        self.store = store
        self.directory = directory
        self.member_index = member_index

    def write(self, state: dict[str, list[tuple[int, bytes, int]]], staged: list[tuple]) -> SnapshotFiles:
        """``state``: per vertex, groups (partition, pickled [(key, value)...], entries);
        ``staged``: (epoch, kind, name, data) of the exactly-once output it covers."""
        segments: dict[tuple[str, int], tuple[list[bytes], int]] = {}
        for vertex, groups in state.items():
            for partition, blob, count in groups:
                blobs, entries = segments.get((vertex, partition), ([], 0))
                blobs.append(blob)
                segments[(vertex, partition)] = (blobs, entries + count)
        index, chunks, offset, total = [], [], 0, 0
        for (vertex, partition), (blobs, entries) in segments.items():
            data = lz4.frame.compress(pack_serialized(blobs), compression_level=0)
            index.append({"vertex": vertex, "partition": partition, "offset": offset, "length": len(data),
                          "crc32": zlib.crc32(data), "entries": entries})
            chunks.append(data)
            offset += len(data)
            total += entries
        prefix, store, directory = f"m{self.member_index}", self.store, self.directory
        state_ref = _stored(store, directory, f"{prefix}.state", b"".join(chunks))
        index_ref = _stored(store, directory, f"{prefix}.index", json.dumps(index).encode())
        staged_ref = _stored(store, directory, f"{prefix}.staged", pack_serialized(staged)) if staged else None
        return SnapshotFiles(self.member_index, state_ref, index_ref, staged_ref, total)


def write_final_output(store, job_id: int, execution_id: int, member_index: int,
                       staged: list[tuple]) -> FileRef | None:
    """A completed member's exactly-once output not yet covered by a committed snapshot;
    its reference, relative to the store's root (None when there is none)."""
    if not staged:
        return None
    directory = execution_path(job_id, execution_id)
    ref = _stored(store, directory, f"m{member_index}.final", pack_serialized(staged))
    return FileRef(f"{directory}/{ref.name}", ref.size, ref.crc32)


def read_staged(directory: Path, ref: FileRef) -> list[tuple]:
    """The (epoch, kind, name, data) in a staged-output file; SnapshotDamagedError if damaged."""
    try:
        return [tuple(write) for write in unpack_serialized(read_checked(directory, ref))]
    except (DamagedFileError, ValueError) as e:
        raise SnapshotDamagedError(f"the output saved in {directory}: {e}") from None


# ---------------------------------------------------------------------------------
# The master commits


@dataclass(frozen=True)
class SnapshotInfo:
    """What a manifest says about a snapshot."""

    path: Path
    snapshot_id: int
    job_id: int
    job_name: str | None
    creation_time: int  # epoch ms
    size_bytes: int  # bytes of all its files
    entry_count: int


def write_completed_staged(directory: Path, staged: list[tuple]) -> FileRef | None:
    return write_checked(Path(directory), COMPLETED_STAGED, pack_serialized(staged)) if staged else None


def commit(directory: Path, snapshot_id: int, job_id: int, job_name: str | None, creation_time: int,
           members: list[SnapshotFiles], completed: FileRef | None) -> SnapshotInfo:
    """Write the manifest (the commit point) naming every member's files; OSError if it fails."""
    files = [f for m in members for f in (m.state, m.index, m.staged) if f is not None]
    size = sum(f.size for f in files) + (completed.size if completed else 0)
    entries = sum(m.entries for m in members)
    manifest = {"format": FORMAT, "snapshot_id": snapshot_id, "job_id": job_id, "job_name": job_name,
                "creation_time": creation_time, "size_bytes": size, "entry_count": entries,
                "members": [_files_to_json(m) for m in members],
                "completed_staged": _ref_to_json(completed) if completed else None}
    atomic_write(Path(directory) / MANIFEST, json.dumps(manifest).encode())
    return SnapshotInfo(Path(directory), snapshot_id, job_id, job_name, creation_time, size, entries)


def _ref_to_json(ref: FileRef) -> dict:
    return {"name": ref.name, "size": ref.size, "crc32": ref.crc32}


def _ref_from_json(d) -> FileRef:
    ref = FileRef(d["name"], d["size"], d["crc32"])
    if not (type(ref.name) is str and "/" not in ref.name and type(ref.size) is int and type(ref.crc32) is int):
        raise ValueError(f"a bad file reference {d!r}")
    return ref


def _files_to_json(files: SnapshotFiles) -> dict:
    return {"member_index": files.member_index, "state": _ref_to_json(files.state),
            "index": _ref_to_json(files.index), "staged": _ref_to_json(files.staged) if files.staged else None,
            "entries": files.entries}


def _files_from_json(d) -> SnapshotFiles:
    return SnapshotFiles(int(d["member_index"]), _ref_from_json(d["state"]), _ref_from_json(d["index"]),
                         _ref_from_json(d["staged"]) if d["staged"] else None, int(d["entries"]))


@dataclass(frozen=True)
class Manifest:
    info: SnapshotInfo
    members: list[SnapshotFiles]
    completed_staged: FileRef | None

    def staged_refs(self) -> list[FileRef]:
        """Every file of exactly-once output the snapshot covers."""
        refs = [m.staged for m in self.members if m.staged is not None]
        return refs + ([self.completed_staged] if self.completed_staged else [])


def read_manifest(path: Path) -> Manifest:
    """The manifest of the snapshot at ``path``; SnapshotDamagedError if there is none readable."""
    try:
        data = (Path(path) / MANIFEST).read_bytes()
    except OSError as e:
        raise SnapshotDamagedError(f"snapshot at {path} has no readable manifest: {e}") from None
    return parse_manifest(data, Path(path))


def parse_manifest(data: bytes, path: Path) -> Manifest:
    try:
        m = json.loads(data)
        if m.get("format") != FORMAT:
            raise ValueError(f"format {m.get('format')}, expected {FORMAT} (written by another jetmq version)")
        info = SnapshotInfo(path, m["snapshot_id"], m["job_id"], m["job_name"], m["creation_time"],
                            m["size_bytes"], m["entry_count"])
        members = [_files_from_json(d) for d in m["members"]]
        completed = _ref_from_json(m["completed_staged"]) if m["completed_staged"] else None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SnapshotDamagedError(f"snapshot at {path} has no readable manifest: {e}") from None
    return Manifest(info, members, completed)


def read_info(path: Path) -> SnapshotInfo:
    return read_manifest(path).info


def read_covered_output(path: Path) -> list[tuple]:
    """Every (epoch, kind, name, data) the snapshot at ``path`` covers, in epoch order."""
    manifest = read_manifest(path)
    writes = [w for ref in manifest.staged_refs() for w in read_staged(path, ref)]
    return sorted(writes, key=lambda w: w[0])


# ---------------------------------------------------------------------------------
# A member restores its part


def read_state(store, path: str, owned: set[int]) -> dict[str, list[tuple[int, bytes, int]]]:
    """Per vertex, the (partition, pickled (keys, values), 0) groups of the partitions in
    ``owned`` and the broadcast ones, from every member's files of the snapshot at ``path``
    (relative to the store's root, read through ``store``).

    Reads the indexes whole and the state files only where those segments are; raises
    SnapshotDamagedError naming the file when a checksum fails or a file is missing.
    """
    try:
        manifest = parse_manifest(store.read(f"{path}/{MANIFEST}"), Path(path))
    except OSError as e:
        raise SnapshotDamagedError(f"snapshot at {path} has no readable manifest: {e}") from None
    state: dict[str, list[tuple[int, bytes, int]]] = {}
    for files in manifest.members:
        state_file = f"{path}/{files.state.name}"
        try:
            index_data = store.read(f"{path}/{files.index.name}")
            if len(index_data) != files.index.size or zlib.crc32(index_data) != files.index.crc32:
                raise DamagedFileError(f"{files.index.name} is damaged (checksum mismatch)")
            size = store.size(state_file)
            if size != files.state.size:
                raise DamagedFileError(f"{files.state.name} has {size:,} bytes, {files.state.size:,} expected "
                                       f"(checksum mismatch)")
            for segment in json.loads(index_data):
                partition = segment["partition"]
                if partition >= 0 and partition not in owned:
                    continue
                data = store.read(state_file, segment["offset"], segment["length"])
                if len(data) != segment["length"] or zlib.crc32(data) != segment["crc32"]:
                    raise DamagedFileError(f"a segment of {files.state.name} is damaged (checksum mismatch)")
                blobs = unpack_serialized(lz4.frame.decompress(data))
                state.setdefault(segment["vertex"], []).extend((partition, blob, 0) for blob in blobs)
        except OSError as e:
            raise SnapshotDamagedError(f"{files.state.name} of snapshot {path} is missing ({e.strerror or e})") \
                from None
        except (DamagedFileError, ValueError, KeyError, RuntimeError) as e:  # RuntimeError: lz4's
            raise SnapshotDamagedError(f"snapshot {path}: {e}") from None
    return state


# ---------------------------------------------------------------------------------
# Copies and deletions


def delete(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def copy_as(source: Path, target: Path) -> None:
    """Make ``target`` a copy of the committed snapshot at ``source``, replacing any old one whole."""
    read_manifest(source)  # refuse to copy a snapshot without a manifest
    staging = target.with_name(f".{target.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    trash = target.with_name(f".{target.name}.old")
    if target.exists():
        os.replace(target, trash)
    os.replace(staging, target)
    shutil.rmtree(trash, ignore_errors=True)
