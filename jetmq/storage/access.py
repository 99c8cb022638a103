"""How a member reaches the snapshot store: as a local directory, or through the master.

Every host should mount the store (``jet-start --snapshot-dir``, an NFS export): then
members read and write it as files, in parallel. A member that cannot see it (its host
does not mount it) reaches it through the master's store service instead, a thread of
the master with a socket of its own: the bytes then cross the network to the master's
disk, but never its control loop. Both give the same four operations on paths relative
to the store's root. Whether a member sees the store is decided by the store's id:
the master writes it into ``<store>/.jetmq-store`` and names it in its Welcome.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from jetmq import protocol as p
from jetmq.errors import JetError
from jetmq.transport import DealerSocket, Poller, tcp_endpoint

STORE_ID_FILE = ".jetmq-store"
#: A file crosses to the store service in parts of at most this many bytes.
PART_BYTES = 32 << 20
#: How long a member waits for the store service to answer a request.
REQUEST_TIMEOUT_S = 60.0


class StoreError(JetError):
    """The snapshot store could not do what was asked."""


def store_id(root: Path) -> str:
    """The store's id, made (and kept in the store) the first time it is asked for."""
    path = Path(root) / STORE_ID_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        Path(root).mkdir(parents=True, exist_ok=True)
        identifier = secrets.token_hex(16)
        path.write_text(identifier + "\n")
        return identifier


def sees_store(root: Path, identifier: str) -> bool:
    """Whether this host mounts the store of that id at ``root``."""
    try:
        return (Path(root) / STORE_ID_FILE).read_text().strip() == identifier
    except OSError:
        return False


def resolve_inside(root: Path, relative: str) -> Path:
    """``root / relative``, refusing a path that would lead outside the store (StoreError)."""
    path = (Path(root) / relative).resolve()
    if not path.is_relative_to(Path(root).resolve()) or any(part.startswith(".") for part in Path(relative).parts):
        raise StoreError(f"{relative!r} is not a path inside the snapshot store")
    return path


class LocalStore:
    """The store as a directory this host mounts."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def write(self, relative: str, data: bytes) -> None:
        """Write a whole file durably (replacing one of that name)."""
        path = resolve_inside(self.root, relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def read(self, relative: str, offset: int = 0, length: int = -1) -> bytes:
        """Bytes of a file from ``offset`` (all the rest when ``length`` is -1); OSError if missing."""
        path = resolve_inside(self.root, relative)
        with open(path, "rb") as f:
            if length < 0:
                f.seek(offset)
                return f.read()
            return os.pread(f.fileno(), length, offset)

    def size(self, relative: str) -> int:
        return resolve_inside(self.root, relative).stat().st_size


class RemoteStore:
    """The store through the master's store service (for a member whose host does not mount it)."""

    def __init__(self, address: str, key=None):
        host, _, port = address.rpartition(":")
        self.address = address
        self._dealer = DealerSocket(tcp_endpoint(host, int(port)), immediate=False, key=key)
        self._poller = Poller()
        self._poller.register(self._dealer)
        self._corr = 0

    def _request(self, msg):
        self._corr += 1
        corr = self._corr
        self._dealer.send(msg, corr)
        if not self._poller.poll(REQUEST_TIMEOUT_S):
            raise OSError(f"the store service at {self.address} did not answer within {REQUEST_TIMEOUT_S:.0f} s")
        while (received := self._dealer.recv()) is not None:
            reply, reply_corr = received
            if reply_corr == corr:
                if reply.error is not None:
                    raise OSError(f"the store service at {self.address}: {reply.error}")
                return reply
        raise OSError(f"the store service at {self.address} answered another request")

    def write(self, relative: str, data: bytes) -> None:
        view = memoryview(data)
        offset = 0
        while True:
            part = bytes(view[offset:offset + PART_BYTES])
            last = offset + len(part) >= len(data)
            self._request(p.StoreWrite(relative, offset, part, last))
            offset += len(part)
            if last:
                return

    def read(self, relative: str, offset: int = 0, length: int = -1) -> bytes:
        if 0 <= length <= PART_BYTES:
            return self._request(p.StoreRead(relative, offset, length)).data
        parts = []
        while True:
            want = PART_BYTES if length < 0 else min(PART_BYTES, length - sum(map(len, parts)))
            reply = self._request(p.StoreRead(relative, offset, want))
            parts.append(reply.data)
            offset += len(reply.data)
            if len(reply.data) < want or (length >= 0 and sum(map(len, parts)) >= length):
                return b"".join(parts)

    def size(self, relative: str) -> int:
        return self._request(p.StoreRead(relative, 0, 0)).size

    def close(self) -> None:
        self._dealer.close()
