"""Streaming source processors: item_stream, file_watcher, socket and SourceBuilder.stream.

None blocks: the file watcher polls the directory (every FILE_POLL_INTERVAL_S while
nothing changes), the socket source reads a non-blocking socket, the item stream
emits what its clock says is due. All release what they hold in close().
"""
from __future__ import annotations

import errno
import logging
import os
import select
import socket
import time
from collections.abc import Callable, Iterator
from fnmatch import fnmatchcase
from typing import Any

from jetmq.core.inbox_outbox import Inbox
from jetmq.core.partition import stable_hash
from jetmq.core.processor import ProcessorContext
from jetmq.core.snapshot import BroadcastKey
from jetmq.pipeline.events import EventTimePolicy, SimpleEvent, wall_ms
from jetmq.pipeline.processors.event_time import StreamSourceProcessor

__all__ = [
    "FileWatcherProcessor",
    "ItemStreamProcessor",
    "SocketSourceProcessor",
    "StreamBuilderSourceProcessor",
    "StreamSourceBuffer",
]

log = logging.getLogger(__name__)

ITEM_STREAM_MAX_BATCH = 1024
"""Most items item_stream emits per call (it catches up after a pause in such steps)."""
FILE_POLL_INTERVAL_S = 0.05
"""How often the file watcher lists its directory while nothing changes."""
FILE_CHUNK_BYTES = 1 << 16
"""Bytes read from one file per call: bounds the memory and the time of a call."""
#: Longest line Sources.socket accepts by default: a peer that never sends a line break must
#: not make the source hold an unbounded line.
MAX_LINE_BYTES = 1 << 20
SOCKET_RECV_BYTES = 1 << 16

_ITEM_STREAM_KEY = BroadcastKey("item-stream")


def default_item(timestamp: int, sequence: int) -> SimpleEvent:
    return SimpleEvent(timestamp, sequence)


class ItemStreamProcessor(StreamSourceProcessor):
    """Emits `fn(ts, seq)` for seq = 0, 1, 2, ... at `rate` per second, on the processor
    of global index 0 only. Item `seq` has the native timestamp `origin + seq * 1000
    // rate` (ms; origin: the wall clock when the job first started) and is emitted
    once the wall clock reaches it, never earlier; after a pause (a suspended job) it
    catches up in steps of ITEM_STREAM_MAX_BATCH. The sequence and origin are saved in
    snapshots (a BroadcastKey), so a restored job goes on where the snapshot left off,
    with the same timestamps: a replay gives the same items."""

    native_timestamps = True

    def __init__(self, rate: int, fn: Callable[[int, int], Any], policy: EventTimePolicy) -> None:
        super().__init__(policy)
        self._rate = rate
        self._fn = fn
        self.sequence = 0
        self.origin = 0

    def start(self, now: float) -> None:
        self.active = self.context.global_index == 0
        self.origin = wall_ms()

    def fill(self, room: int, now: float) -> list:
        rate, origin, first = self._rate, self.origin, self.sequence
        elapsed = wall_ms() - origin
        if elapsed < 0:
            return []
        due = -(-(elapsed + 1) * rate // 1000)  # how many items have a timestamp <= now
        count = min(due - first, room, ITEM_STREAM_MAX_BATCH)
        if count <= 0:
            return []
        fn = self._fn
        events = []
        for seq in range(first, first + count):
            ts = origin + seq * 1000 // rate
            events.append((ts, fn(ts, seq)))
        self.sequence = first + count
        return events

    def save_state(self) -> bool:
        return self.outbox.offer_to_snapshot(_ITEM_STREAM_KEY, (self.sequence, self.origin))

    def fill_deadline(self, now: float) -> float | None:
        """When the next item's timestamp comes (the member sleeps until then)."""
        due_ms = self.origin + self.sequence * 1000 // self._rate
        return now + max(0.0, (due_ms - time.time() * 1000) / 1000)

    def restore_from_snapshot(self, inbox: Inbox) -> None:
        for key, value in inbox.take():
            if key == _ITEM_STREAM_KEY:
                self.sequence, self.origin = value


def owns_file(name: str, context: ProcessorContext, shared_file_system: bool) -> bool:
    """Which processor watches a file: by a stable hash of its name, over all processors
    of the cluster (shared file system) or over the member's own ones."""
    if shared_file_system:
        return stable_hash(name) % context.total_parallelism == context.global_index
    return stable_hash(name) % context.local_parallelism == context.local_index


class FileWatcherProcessor(StreamSourceProcessor):
    """Emits the lines appended to the files of a directory after the job started (the
    content a file had then is skipped; a new file is read from its start).

    Offsets are in bytes, one per file, saved in snapshots under BroadcastKey(("file",
    name)) so that on restore every processor takes the files it now watches: a line
    is emitted once per committed snapshot (exactly-once with a transactional sink).
    A line is emitted only once its newline is written. A file that shrinks is read
    again from its start. No file stays open between calls.
    """

    def __init__(self, directory: str, glob: str, shared_file_system: bool, encoding: str,
                 policy: EventTimePolicy) -> None:
        super().__init__(policy)
        self._directory = directory
        self._glob = glob
        self._shared = shared_file_system
        self._encoding = encoding
        self.offsets: dict[str, int] = {}  # file name -> bytes emitted
        self._restored: dict[str, int] | None = None
        self._next_scan = 0.0
        self._more: list[str] = []  # files known to have more to read now
        self._saving: Iterator[tuple[str, int]] | None = None
        self._unsaved: tuple[str, int] | None = None

    def start(self, now: float) -> None:
        if not os.path.isdir(self._directory):
            raise FileNotFoundError(f"the directory {self._directory!r} of Sources.file_watcher does not exist")
        self.offsets = {name: size for name, size in self._scan()}

    def _scan(self) -> list[tuple[str, int]]:
        """(name, size) of the regular files this processor watches."""
        found = []
        try:
            names = os.listdir(self._directory)
        except FileNotFoundError:
            return found
        for name in names:
            if not fnmatchcase(name, self._glob) or not owns_file(name, self.context, self._shared):
                continue
            try:
                st = os.stat(os.path.join(self._directory, name))
            except FileNotFoundError:
                continue
            if not os.path.isdir(os.path.join(self._directory, name)):
                found.append((name, st.st_size))
        return found

    def fill(self, room: int, now: float) -> list:
        if not self._more:
            if now < self._next_scan:
                return []
            self._next_scan = now + FILE_POLL_INTERVAL_S
            sizes = dict(self._scan())
            for gone in self.offsets.keys() - sizes.keys():
                del self.offsets[gone]
            for name, size in sorted(sizes.items()):
                offset = self.offsets.setdefault(name, 0)
                if size < offset:
                    log.warning("file %s shrank below the %d bytes read: reading it again from its start",
                                name, offset)
                    self.offsets[name] = offset = 0
                if size > offset:
                    self._more.append(name)
        lines: list[str] = []
        while self._more and len(lines) < room:
            name = self._more.pop()
            more = self._read(name, lines)
            if more:
                self._more.append(name)
                break
        return lines

    def fill_deadline(self, now: float) -> float | None:
        return now if self._more else self._next_scan

    def _read(self, name: str, lines: list[str]) -> bool:
        """Append the complete lines after the file's offset (one chunk); True if it has more."""
        offset = self.offsets.get(name, 0)
        try:
            with open(os.path.join(self._directory, name), "rb") as f:
                f.seek(offset)
                chunk = f.read(FILE_CHUNK_BYTES)
        except FileNotFoundError:
            self.offsets.pop(name, None)
            return False
        end = chunk.rfind(b"\n")
        if end < 0:
            return False  # no complete line yet
        encoding = self._encoding
        for raw in chunk[:end].split(b"\n"):
            line = raw.decode(encoding, errors="replace")
            lines.append(line[:-1] if line.endswith("\r") else line)
        self.offsets[name] = offset + end + 1
        return len(chunk) == FILE_CHUNK_BYTES

    def save_state(self) -> bool:
        if self._saving is None:
            self._saving = iter(list(self.offsets.items()))
        entry = self._unsaved
        while True:
            if entry is None:
                entry = next(self._saving, None)
                if entry is None:
                    self._saving = self._unsaved = None
                    return True
            if not self.outbox.offer_to_snapshot(BroadcastKey(("file", entry[0])), entry[1]):
                self._unsaved = entry
                return False
            entry = None

    def restore_from_snapshot(self, inbox: Inbox) -> None:
        restored = self._restored if self._restored is not None else {}
        for key, offset in inbox.take():
            if type(key) is BroadcastKey and type(key.key) is tuple and key.key[0] == "file":
                name = key.key[1]
                if owns_file(name, self.context, self._shared):
                    restored[name] = offset
        self._restored = restored

    def finish_snapshot_restore(self) -> bool:
        # files the snapshot knows resume at their offset; files it does not know
        # appeared after it, so they are read from their start
        restored = self._restored or {}
        self.offsets = {name: restored.get(name, 0) for name, _size in self._scan()}
        self._restored = None
        return True


class SocketSourceProcessor(StreamSourceProcessor):
    """Reads text lines from a TCP server (one connection, from the processor of global
    index 0); the stream ends when the server closes the connection. At-most-once:
    there is no offset to save, so lines in flight when a job restarts are lost, and
    a restarted job reads what the server sends on its new connection."""

    def __init__(self, host: str, port: int, encoding: str, policy: EventTimePolicy,
                 max_line_bytes: int = MAX_LINE_BYTES) -> None:
        super().__init__(policy)
        self._host = host
        self._port = port
        self._encoding = encoding
        self._max_line_bytes = max_line_bytes
        self._socket: socket.socket | None = None
        self._connected = False
        self._tail = b""

    def start(self, now: float) -> None:
        self.active = self.context.global_index == 0
        if not self.active:
            return
        family, kind, proto, _name, address = socket.getaddrinfo(self._host, self._port, type=socket.SOCK_STREAM)[0]
        self._socket = socket.socket(family, kind, proto)
        self._socket.setblocking(False)
        code = self._socket.connect_ex(address)
        if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            self._fail(code)
        self._connected = code == 0

    def _fail(self, code: int) -> None:
        raise ConnectionError(f"Sources.socket cannot connect to {self._host}:{self._port}: {os.strerror(code)}")

    def fill(self, room: int, now: float) -> list:
        sock = self._socket
        if not self._connected:
            _r, writable, _x = select.select([], [sock], [], 0)
            if not writable:
                return []
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                self._fail(code)
            self._connected = True
        try:
            data = sock.recv(SOCKET_RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return []
        if not data:  # the server closed the connection: the stream ends
            self.ended = True
            tail, self._tail = self._tail, b""
            return [self._decode(tail)] if tail else []
        data = self._tail + data
        end = data.rfind(b"\n")
        self._tail = data if end < 0 else data[end + 1:]
        lines = [] if end < 0 else data[:end].split(b"\n")
        if len(self._tail) > self._max_line_bytes or any(len(line) > self._max_line_bytes for line in lines):
            raise ValueError(f"Sources.socket: a line from {self._host}:{self._port} is longer than "
                             f"{self._max_line_bytes:,} bytes (max_line_bytes); the server sends no line breaks, "
                             f"or lines too long for this source")
        return [self._decode(raw) for raw in lines]

    def _decode(self, raw: bytes) -> str:
        line = raw.decode(self._encoding, errors="replace")
        return line[:-1] if line.endswith("\r") else line

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class StreamSourceBuffer:
    """What a streaming SourceBuilder's fill_buffer_fn fills: `add(item, timestamp=None)`
    (the timestamp, in ms, is the item's native one for `with_native_timestamps`), and
    `close()` to end the stream (mostly for tests)."""

    __slots__ = ("_events", "_closed")

    def __init__(self) -> None:
        self._events: list[tuple[Any, Any]] = []
        self._closed = False

    def add(self, item: Any, timestamp: int | None = None) -> None:
        if self._closed:
            raise RuntimeError("StreamSourceBuffer.add() after close(): the source already said it has ended")
        self._events.append((timestamp, item))

    def close(self) -> None:
        self._closed = True

    @property
    def is_closed(self) -> bool:
        return self._closed

    def take(self) -> list[tuple[Any, Any]]:
        events, self._events = self._events, []
        return events

    def __len__(self) -> int:
        return len(self._events)


class StreamBuilderSourceProcessor(StreamSourceProcessor):
    """Runs a streaming SourceBuilder's functions. One instance in the cluster (global
    index 0) unless distributed. Snapshots: `create_snapshot_fn(state)` per instance,
    saved under BroadcastKey(("source-builder", global index)); on restore every
    instance gets `restore_snapshot_fn(state, [saved, ...])` with the objects of all
    instances (in index order): as Jet, choosing its own is up to the function."""

    native_timestamps = True

    def __init__(self, name: str, create_fn: Callable[[ProcessorContext], Any],
                 fill_buffer_fn: Callable[[Any, StreamSourceBuffer], None],
                 create_snapshot_fn: Callable[[Any], Any] | None,
                 restore_snapshot_fn: Callable[[Any, list], None] | None,
                 destroy_fn: Callable[[Any], None] | None, distributed: bool,
                 policy: EventTimePolicy) -> None:
        super().__init__(policy)
        self._name = name
        self._create_fn = create_fn
        self._fill_buffer_fn = fill_buffer_fn
        self._create_snapshot_fn = create_snapshot_fn
        self._restore_snapshot_fn = restore_snapshot_fn
        self._destroy_fn = destroy_fn
        self._distributed = distributed
        self._state: Any = None
        self._created = False
        self._restored: list[tuple[int, Any]] = []

    def start(self, now: float) -> None:
        self.active = self._distributed or self.context.global_index == 0
        if self.active:
            self._state = self._create_fn(self.context)
            self._created = True

    def fill(self, room: int, now: float) -> list:
        buffer = StreamSourceBuffer()
        self._fill_buffer_fn(self._state, buffer)
        if buffer.is_closed:
            self.ended = True
        events = buffer.take()
        if self._mapper.kind == "native":
            for ts, item in events:
                if ts is None:
                    raise ValueError(f"source {self._name!r} is read with native timestamps, but its "
                                     f"fill_buffer_fn added {item!r} without a timestamp")
        return events

    def save_state(self) -> bool:
        if self._create_snapshot_fn is None:
            return True
        key = BroadcastKey(("source-builder", self.context.global_index))
        return self.outbox.offer_to_snapshot(key, self._create_snapshot_fn(self._state))

    def restore_from_snapshot(self, inbox: Inbox) -> None:
        for key, value in inbox.take():
            if type(key) is BroadcastKey and type(key.key) is tuple and key.key[0] == "source-builder":
                self._restored.append((key.key[1], value))

    def finish_snapshot_restore(self) -> bool:
        if self.active and self._restore_snapshot_fn is not None and self._restored:
            self._restore_snapshot_fn(self._state, [value for _index, value in sorted(self._restored,
                                                                                     key=lambda e: e[0])])
        self._restored = []
        return True

    def close(self) -> None:
        if self._created and self._destroy_fn is not None:
            self._created = False
            self._destroy_fn(self._state)
