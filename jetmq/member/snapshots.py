"""A member's side of snapshots: it writes its state and its exactly-once output into the
snapshot store itself, and reads back what it owns on restore. The master only hears the
names, sizes and checksums of the files (see jetmq/storage/snapshots.py).
"""
from __future__ import annotations

import logging
from pathlib import Path

from jetmq import protocol as p
from jetmq.ids import id_to_string
from jetmq.storage import snapshots as store
from jetmq.storage.access import LocalStore, RemoteStore, sees_store

log = logging.getLogger(__name__)


class StagedOutput:
    """An execution's exactly-once sink output on this member, (epoch, kind, name, data),
    kept until a committed snapshot covers it: the items before barrier ``epoch`` become
    visible when snapshot ``epoch`` commits (or when the job completes), and are dropped
    with the execution otherwise (its successor replays them)."""

    def __init__(self):
        self._writes: list[tuple[int, str, str, bytes]] = []

    def add(self, epoch: int, kind: str, name: str, data: bytes) -> None:
        self._writes.append((epoch, kind, name, data))

    def up_to(self, snapshot_id: int) -> list[tuple]:
        """What snapshot ``snapshot_id`` covers: every write of its epoch or before."""
        return [w for w in self._writes if w[0] <= snapshot_id]

    def committed(self, snapshot_id: int) -> None:
        """Snapshot ``snapshot_id`` committed: the master publishes what it covers."""
        self._writes = [w for w in self._writes if w[0] > snapshot_id]

    def all(self) -> list[tuple]:
        return list(self._writes)


class MemberSnapshots:
    """Reads and writes this member's part of snapshots in the store the master names in
    its Welcome: as files, where this host mounts it, else through the master's store
    service (jetmq/storage/access.py)."""

    def __init__(self, cluster_key=None):
        self.store = None
        self._cluster_key = cluster_key  # presented to the master's store service

    def use_store(self, root: str, store_id: str, master_host: str, store_port: int) -> str:
        """Decide how to reach the store; a line saying how, for the log."""
        if self.store is not None and hasattr(self.store, "close"):
            self.store.close()
        if sees_store(Path(root), store_id):
            self.store = LocalStore(Path(root))
            return f"snapshot store {root}, mounted here"
        self.store = RemoteStore(f"{master_host}:{store_port}", self._cluster_key)
        return f"snapshot store {root} is not mounted here: through the master's store service at " \
               f"{master_host}:{store_port}"

    def _store(self):
        if self.store is None:
            raise RuntimeError("the master has not named the snapshot store yet")
        return self.store

    def close(self) -> None:
        if self.store is not None and hasattr(self.store, "close"):
            self.store.close()

    def restore(self, msg: p.InitExecution) -> dict | None:
        """The state this member restores for an execution, by vertex, or None; raises
        SnapshotDamagedError with a message naming the snapshot when it cannot be read."""
        if msg.restore_dir is None:
            return None
        owned = {partition for partition, owner in enumerate(msg.partition_owners) if owner == msg.member_index}
        try:
            return store.read_state(self._store(), msg.restore_dir, owned)
        except store.SnapshotDamagedError as e:
            raise store.SnapshotDamagedError(describe_damage(msg, str(e))) from None

    def write(self, job_id: int, snapshot_id: int, member_index: int, state: dict,
              staged: list[tuple]) -> p.SnapshotFiles:
        """Write this member's state and covered output for a snapshot; OSError if a write fails."""
        writer = store.MemberSnapshotWriter(self._store(), store.snapshot_path(job_id, snapshot_id), member_index)
        return writer.write(state, staged)

    def write_final_output(self, job_id: int, execution_id: int, member_index: int,
                           staged: list[tuple]) -> p.FileRef | None:
        return store.write_final_output(self._store(), job_id, execution_id, member_index, staged)


def describe_damage(msg: p.InitExecution, detail: str) -> str:
    """The failure text of a restore that cannot read its snapshot, naming it as a user would."""
    if msg.restore_dir.startswith("named/"):
        return f'snapshot "{msg.restore_dir.removeprefix("named/")}" doesn\'t exist or is damaged: {detail}'
    return (f"snapshot {msg.restored_snapshot_id} of job {id_to_string(msg.job_id)} is damaged and cannot be "
            f"restored: {detail}")
