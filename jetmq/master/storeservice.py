"""The master's store service: the snapshot store for members whose host does not mount it.

A thread of its own, with a socket of its own (the master's bind address, a port of
its own that the Welcome names): members write their snapshot files through it in
parts and read them back, while the master's control loop never sees a byte of them.
Paths are relative to the store and may not lead out of it. Where every host mounts
the store (``--snapshot-dir``), members never use it.
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from jetmq import protocol as p
from jetmq.storage.access import LocalStore, StoreError, resolve_inside
from jetmq.transport import Poller, RouterSocket, tcp_endpoint

log = logging.getLogger(__name__)

#: How often the service's thread looks whether it should stop.
POLL_S = 0.2


class StoreService(threading.Thread):
    def __init__(self, root: Path, bind_host: str, key=None):
        super().__init__(name="jetmq-store-service", daemon=True)
        self.root = Path(root)
        self._local = LocalStore(self.root)
        self._router = RouterSocket(tcp_endpoint(bind_host, 0), key=key)  # used only by the thread from now on
        self.port = int(self._router.endpoint.rsplit(":", 1)[1])
        self._stopping = threading.Event()
        self.bytes_written = self.bytes_read = 0

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=5)

    def run(self) -> None:
        poller = Poller()
        poller.register(self._router)
        try:
            while not self._stopping.is_set():
                if poller.poll(POLL_S):
                    while (incoming := self._router.recv()) is not None:
                        self._router.send(incoming.peer, self._serve(incoming.msg), incoming.corr)
        finally:
            self._router.close()

    def _serve(self, msg) -> p.StoreReply:
        try:
            if isinstance(msg, p.StoreWrite):
                self._write(msg)
                return p.StoreReply(None, b"", 0)
            if isinstance(msg, p.StoreRead):
                size = self._local.size(msg.path)
                data = self._local.read(msg.path, msg.offset, msg.length) if msg.length else b""
                self.bytes_read += len(data)
                return p.StoreReply(None, data, size)
            return p.StoreReply(f"{type(msg).__name__} is not a request of the store service", b"", 0)
        except (OSError, StoreError) as e:
            return p.StoreReply(getattr(e, "strerror", None) or str(e), b"", 0)

    def _write(self, msg: p.StoreWrite) -> None:
        """Parts go to a hidden file, which the last part makes whole, durable and visible."""
        path = resolve_inside(self.root, msg.path)
        part = path.with_name(f".{path.name}.part")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(part, "r+b" if msg.offset else "wb") as f:
            f.seek(msg.offset)
            f.write(msg.data)
            if msg.last:
                f.truncate()
                f.flush()
                os.fsync(f.fileno())
        self.bytes_written += len(msg.data)
        if msg.last:
            os.replace(part, path)
