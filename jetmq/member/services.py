"""What a member offers its processors: the cluster's named maps and lists.

Writes go to the master on the member's job channel, in order with everything else
the member tells the master, so a job's writes arrive before its completion does.
Reads (done by sources when they start) ask the master directly and wait for it.
"""
from __future__ import annotations

from typing import Callable, Iterable

from jetmq import protocol as p
from jetmq import serialization
from jetmq.requester import Requester


class ClusterServices:
    def __init__(self, send_to_master: Callable[[object], None], master_address: str, cluster_key=None):
        self._send = send_to_master
        self._master_address = master_address
        self._cluster_key = cluster_key
        self._requester: Requester | None = None
        #: ``stage(execution_id, epoch, kind, name, data)`` keeps exactly-once output on this
        #: member until a snapshot covers it (the member's ExecutionService sets it)
        self.stage: Callable[[int, int, str, str, bytes], None] = lambda *write: None

    def map_put_all(self, name: str, entries: Iterable[tuple]) -> None:
        if blob := _pack_entries(entries):
            self._send(p.MapPutAll(name, blob))

    def list_add_all(self, name: str, items: Iterable) -> None:
        if blob := _pack_items(items):
            self._send(p.ListAddAll(name, blob))

    def stage_map_put_all(self, execution_id: int, epoch: int, name: str, entries: Iterable[tuple]) -> None:
        """Exactly-once: these entries become visible when snapshot ``epoch`` commits."""
        if blob := _pack_entries(entries):
            self.stage(execution_id, epoch, "map", name, blob)

    def stage_list_add_all(self, execution_id: int, epoch: int, name: str, items: Iterable) -> None:
        """Exactly-once: these items become visible when snapshot ``epoch`` commits."""
        if blob := _pack_items(items):
            self.stage(execution_id, epoch, "list", name, blob)

    def observable_attach(self, name: str, job_id: int) -> None:
        self._send(p.ObservableAttach(name, job_id))

    def observable_publish(self, name: str, items: Iterable) -> None:
        if blob := _pack_items(items):
            self._send(p.ObservablePublish(name, blob))

    def read_map(self, name: str) -> dict:
        return self._reader().get_map(name)

    def read_list(self, name: str) -> list:
        return self._reader().get_list(name)

    def _reader(self) -> Requester:
        if self._requester is None:
            self._requester = Requester(self._master_address, key=self._cluster_key)
        return self._requester

    def close(self) -> None:
        if self._requester is not None:
            self._requester.close()


def _pack_entries(entries: Iterable[tuple]) -> bytes | None:
    """Pickled (key, value) pairs as one blob; None when there are none."""
    dumps = serialization.dumps
    packed = [(dumps(key), dumps(value)) for key, value in entries]
    return p.pack_serialized(packed) if packed else None


def _pack_items(items: Iterable) -> bytes | None:
    """Pickled items as one blob; None when there are none."""
    packed = [serialization.dumps(item) for item in items]
    return p.pack_serialized(packed) if packed else None
