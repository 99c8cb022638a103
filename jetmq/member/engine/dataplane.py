"""Distributed edges: sender and receiver tasklets, credits, and batch serialization.

For every distributed edge and every other member, a SenderTasklet here merges the
batches of this member's producers, and a ReceiverTasklet there hands them to the
consuming processors. Batches are pickled (protocol 5, cloudpickle as a fallback for
classes defined in a user's script) and lz4-compressed when large enough to pay.

Flow control is by credits, per (edge, sender member, receiver member): the receiver
grants one credit per item it has passed on to its local queues, and a sender sends
no more items than it holds credits for. A slow consumer so stalls only its own edge.
The receiver holds senders to it: every batch says how many items it carries, and a
batch beyond the credits granted, or carrying other than it says, is a protocol
violation that fails the execution (DataPlaneViolation), so what a receiver queues
is bounded by its credits whatever a peer sends.
"""
from __future__ import annotations

import struct
import time
from collections import deque
from typing import Callable

import lz4.frame

from jetmq import serialization
from jetmq.core.markers import DONE_ITEM, MARKER_TYPES, Watermark
from jetmq.core.processor import Progress
from jetmq.member.engine.queues import Event, InputStream
from jetmq.member.engine.routing import OutboundEdge

#: Items a sender may have in flight before the receiver grants more (covers the
#: round trip of a credit at a few million items per second).
INITIAL_CREDITS = 16_384
#: A receiver grants credits once this many items are passed on (below the initial
#: credits, so a sender never waits for a grant the receiver holds back).
GRANT_BATCH = INITIAL_CREDITS // 4
#: Most items a sender puts in one network batch: small enough that pickling one (and
#: unpickling it on the other side) takes a fraction of a millisecond, so that a batch
#: job does not hold the loop while a streaming job waits; large enough for throughput
#: (scripts/bench, one machine: with 4,096 the shuffle ran as fast, and a streaming
#: job beside it had a latency p99 of 5.1-5.6 ms against 4.5 ms).
MAX_BATCH_ITEMS = 1024
#: Batches a sender sends per call at most when each ends with a marker (a watermark
#: and the items behind it leave in the same step of the loop).
MAX_SEALED_PER_CALL = 3
#: How soon a sender tries again a batch its connection's queue refused (the peer not
#: connected yet, or slow to read), and a receiver a credit grant.
SEND_RETRY_S = 0.001
#: Pickled batches at least this large are lz4-compressed (smaller ones do not pay:
#: see scripts/bench).
COMPRESS_MIN_BYTES = 8192

KIND_BATCH = 1
KIND_BATCH_LZ4 = 2
KIND_CREDIT = 3
KIND_PING = 4  # a member checks, before it reports an execution initialised, that a peer answers
KIND_PONG = 5
#: kind, execution id, edge index, sender member index, items in the batch (0 for credits)
HEADER = struct.Struct("!BQHHI")
CREDIT = struct.Struct("!Q")


class DataPlaneViolation(Exception):
    """A peer broke the data plane's rules (more items than credits, a batch that is not
    what its header says): the execution fails rather than trust it."""


def serialize(batch: list) -> tuple[int, bytes]:
    data = serialization.dumps(batch)
    if len(data) >= COMPRESS_MIN_BYTES:
        return KIND_BATCH_LZ4, lz4.frame.compress(data, compression_level=0)
    return KIND_BATCH, data


def deserialize(kind: int, payload: bytes) -> list:
    if kind == KIND_BATCH_LZ4:
        payload = lz4.frame.decompress(payload)
    return serialization.loads(payload)


class SenderTasklet:
    """Sends one distributed edge's batches from this member to one other member."""

    def __init__(self, name: str, stream: InputStream, execution_id: int, edge_index: int, member_index: int,
                 send: Callable[[bytes, bytes], bool]):
        self.name = name
        self._stream = stream
        self._send = send
        self._execution_id = execution_id
        self._edge_index = edge_index
        self._member_index = member_index
        self.credits = INITIAL_CREDITS
        self._buffer: list = []
        self._sealed = False  # the buffer ends with a marker: send it before taking more
        self._done = False
        self.items_out = 0  # metrics: items sent (markers excluded) and bytes of the frames
        self.bytes_out = 0

    def add_credits(self, count: int) -> None:
        self.credits += count

    def call(self) -> Progress:
        if self._done:
            return Progress.DONE
        progress = False
        for _ in range(MAX_SEALED_PER_CALL):
            progress |= self._fill()
            sealed = self._sealed
            if not (self._buffer and self.credits > 0 and self._send_buffer()):
                break
            progress = True
            if not sealed or self._done:  # what follows a marker goes in the same call
                break
        if self._done:
            return Progress.DONE
        return Progress.of(progress, False)

    def _fill(self) -> bool:
        """Move queued items into the buffer, up to a marker (which seals it) or
        MAX_BATCH_ITEMS; True if anything moved."""
        buffer = self._buffer
        moved = False
        while not self._sealed and len(buffer) < MAX_BATCH_ITEMS:
            event = self._stream.drain_to(buffer)
            if event is Event.NOTHING:
                break
            moved = True
            if event is Event.WATERMARK:
                buffer.append(Watermark(self._stream.watermark))
                self._sealed = True
            elif event is Event.BARRIER:  # every local producer delivered it: forward it once
                buffer.append(self._stream.barrier)
                self._stream.release_barrier()
                self._sealed = True
            elif event is Event.DONE:
                buffer.append(DONE_ITEM)
                self._sealed = True
        return moved

    def wake_at(self) -> float | None:
        """A batch that the connection refused (its queue full) is tried again soon;
        otherwise input or a credit frame wakes this tasklet."""
        if self._buffer and self.credits > 0:
            return time.monotonic() + SEND_RETRY_S
        return None

    def _send_buffer(self) -> bool:
        buffer = self._buffer
        count = min(len(buffer), self.credits)
        batch, rest = (buffer, []) if count == len(buffer) else (buffer[:count], buffer[count:])
        kind, payload = serialize(batch)
        header = HEADER.pack(kind, self._execution_id, self._edge_index, self._member_index, len(batch))
        if not self._send(header, payload):
            return False
        self.items_out += count - 1 if type(batch[-1]) in MARKER_TYPES else count
        self.bytes_out += len(header) + len(payload)
        self.credits -= count
        self._buffer = rest
        if not rest:
            if self._sealed and batch[-1] is DONE_ITEM:
                self._done = True
            self._sealed = False
        return True

    def __repr__(self) -> str:
        return f"SenderTasklet({self.name}, credits={self.credits})"


class ReceiverTasklet:
    """Receives one distributed edge's batches from one other member and routes them here."""

    def __init__(self, name: str, outbound: OutboundEdge, grant: Callable[[int], bool]):
        """``grant(count)`` sends the sender ``count`` credits: False if the connection's
        queue refused them (they are owed, and sent again on the next call)."""
        self.name = name
        self._outbound = outbound
        self._grant = grant
        self._incoming: deque[tuple[int, int, bytes]] = deque()
        self._pending: list | None = None
        self._ungranted = 0
        self._allowed = INITIAL_CREDITS  # items the sender may have sent so far: its credits
        self._received = 0
        self._done = False
        self.items_in = 0  # metrics: items received (markers excluded) and bytes of the frames
        self.bytes_in = 0

    def enqueue(self, kind: int, count: int, payload: bytes) -> None:
        """Called by the data plane when a batch of ``count`` items for this edge arrives;
        DataPlaneViolation when the sender had no credits for them."""
        self._received += count
        if self._received > self._allowed:
            raise DataPlaneViolation(f"{self.name}: the sender sent {self._received:,} items with credits for "
                                     f"{self._allowed:,}")
        self._incoming.append((kind, count, payload))
        self.bytes_in += HEADER.size + len(payload)

    def call(self) -> Progress:
        if self._done:
            return Progress.DONE
        progress = False
        while self._pending is not None or self._incoming:
            if self._pending is None:
                kind, count, payload = self._incoming.popleft()
                self._pending = deserialize(kind, payload)
                if len(self._pending) != count:
                    raise DataPlaneViolation(f"{self.name}: a batch said {count} items and held {len(self._pending)}")
            if not self._outbound.has_room():
                break
            batch, self._pending = self._pending, None
            self.items_in += len(batch) - 1 if batch and type(batch[-1]) in MARKER_TYPES else len(batch)
            self._outbound.push(batch)
            self._ungranted += len(batch)
            self._grant_owed()
            progress = True
            if batch and batch[-1] is DONE_ITEM:
                self._done = True
                return Progress.DONE
        if not progress:
            self._grant_owed()  # one the connection refused before (wake_at() asked for this call)
        return Progress.of(progress, False)

    def _grant_owed(self) -> None:
        """Grant the credits of the items passed on, once there are GRANT_BATCH of them
        (one credit message per several batches). A refused grant stays owed: dropped,
        its credits would be lost to the sender for good, and the edge would stall."""
        if self._ungranted >= GRANT_BATCH and self._grant(self._ungranted):
            self._allowed += self._ungranted
            self._ungranted = 0

    def wake_at(self) -> float | None:
        """Batches arrive on the data socket and room comes from local consumers; only
        a grant that the connection refused is tried again soon."""
        if self._ungranted >= GRANT_BATCH:
            return time.monotonic() + SEND_RETRY_S
        return None

    def __repr__(self) -> str:
        return f"ReceiverTasklet({self.name}, {len(self._incoming)} batches waiting)"
