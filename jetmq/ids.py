"""Flake ids for jobs and executions, and their printed form, as in Jet.

An id packs, from the high bits down: 41 bits of milliseconds since
``EPOCH_START_MS`` (2018-01-01T00:00Z), 6 bits of sequence and 16 bits of
node id, so ``id == ts << 22 | seq << 16 | node``. Ids are Python ints in
the range of a Java ``long``; generated ids are never negative.

The printed form is Jet's ``Util.idToString``: the 64-bit two's complement
as 16 lower-case hex digits in four dash-separated groups
(``0401-9f77-b9c0-0001``).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

EPOCH_START_MS = 1_514_764_800_000
"""2018-01-01T00:00Z in Unix epoch milliseconds: Hazelcast's flake-id epoch."""

BITS_TIMESTAMP = 41
BITS_SEQUENCE = 6
BITS_NODE_ID = 16
MAX_NODE_ID = (1 << BITS_NODE_ID) - 1

_TIMESTAMP_SHIFT = BITS_SEQUENCE + BITS_NODE_ID
_TIMESTAMP_LIMIT = 1 << BITS_TIMESTAMP  # exclusive, in ms since the epoch (~69 years)
# The generator counts in "ticks" = (ms since epoch) << BITS_SEQUENCE | sequence,
# so running out of sequence in one millisecond simply carries into the next one.
_TICK_LIMIT = 1 << (BITS_TIMESTAMP + BITS_SEQUENCE)  # exclusive

_JAVA_LONG_MIN = -(1 << 63)
_JAVA_LONG_LIMIT = 1 << 63  # exclusive
_UNSIGNED_64_MASK = (1 << 64) - 1
_HEX_DIGITS = 16
_GROUP_WIDTH = 4
# Jet's ID_PATTERN, "(\p{XDigit}{4}-){3}\p{XDigit}{4}"; ASCII hex only, whole string.
_ID_PATTERN = re.compile(r"(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{4}")

_NANOS_PER_MS = 1_000_000


def _wall_clock_ms() -> int:
    """Milliseconds since the Unix epoch from the system wall clock."""
    return time.time_ns() // _NANOS_PER_MS


class FlakeIdGenerator:
    """Makes unique, strictly increasing flake ids for one node. Thread-safe.

    ``clock`` returns Unix epoch milliseconds (default: the wall clock); tests
    pass a fake one. Up to 64 ids share a millisecond; more borrow from the
    following milliseconds, so ids may run ahead of the clock for a while. If
    the clock goes backwards the generator keeps counting from its last id:
    ids never repeat nor decrease within one generator.

    Unlike Hazelcast's generator, this one never sleeps when it runs far ahead
    of the clock (Hazelcast waits beyond 15 s ahead): jetmq draws ids for jobs
    and executions only, far fewer than 64,000 a second.
    """

    def __init__(self, node_id: int, clock: Callable[[], int] = _wall_clock_ms) -> None:
        if not 0 <= node_id <= MAX_NODE_ID:
            raise ValueError(f"node_id must be in 0..{MAX_NODE_ID}, got {node_id}")
        self._node_id = node_id
        self._clock = clock
        self._lock = threading.Lock()
        self._last_tick = -1

    @property
    def node_id(self) -> int:
        """The node id in the low 16 bits of every id this generator makes."""
        return self._node_id

    def new_id(self) -> int:
        """Return a new id, greater than every id this generator returned before.

        Raises ValueError when the clock reads before 2018-01-01 or past the
        41-bit range (year 2087), OverflowError when the id space is used up.
        """
        with self._lock:
            now_ms = self._clock()
            since_epoch_ms = now_ms - EPOCH_START_MS
            if not 0 <= since_epoch_ms < _TIMESTAMP_LIMIT:
                raise ValueError(f"clock reading {now_ms} ms is outside the flake-id time range")
            tick = max(since_epoch_ms << BITS_SEQUENCE, self._last_tick + 1)
            if tick >= _TICK_LIMIT:
                raise OverflowError("flake-id space exhausted")
            self._last_tick = tick
        return tick << BITS_NODE_ID | self._node_id


def id_timestamp_ms(flake_id: int) -> int:
    """The Unix epoch milliseconds encoded in ``flake_id`` (its top 41 bits).

    For a generated id this is the clock reading it was made at, or slightly
    later when the generator borrowed from following milliseconds.
    """
    if not 0 <= flake_id < _JAVA_LONG_LIMIT:
        raise ValueError(f"not a flake id: {flake_id}")
    return (flake_id >> _TIMESTAMP_SHIFT) + EPOCH_START_MS


def id_to_string(flake_id: int) -> str:
    """Print an id as Jet does: ``0401-9f77-b9c0-0001``.

    Accepts any value of a Java ``long`` (-2**63 .. 2**63-1); negative values
    print as their 64-bit two's complement (``-1`` -> ``ffff-ffff-ffff-ffff``).
    """
    if not _JAVA_LONG_MIN <= flake_id < _JAVA_LONG_LIMIT:
        raise ValueError(f"id out of the 64-bit signed range: {flake_id}")
    digits = format(flake_id & _UNSIGNED_64_MASK, f"0{_HEX_DIGITS}x")
    return "-".join(digits[i:i + _GROUP_WIDTH] for i in range(0, _HEX_DIGITS, _GROUP_WIDTH))


def id_from_string(text: str | None) -> int | None:
    """Parse an id printed by ``id_to_string``; None when ``text`` is not one.

    The whole string must match ``([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{4}`` (no
    spaces, no newline). The result is the signed 64-bit value, so it
    round-trips with ``id_to_string`` (Jet returns -1 for a mismatch instead).
    """
    if not isinstance(text, str) or _ID_PATTERN.fullmatch(text) is None:
        return None
    unsigned = int(text.replace("-", ""), 16)
    return unsigned - (1 << 64) if unsigned >= _JAVA_LONG_LIMIT else unsigned


#: A member's main thread connects to the master as its link's routing id plus this
#: (member/channel.py); the master takes both for the same member.
CHANNEL_SUFFIX = b"/jobs"


def member_identity(member_uuid: str) -> bytes:
    """The ZeroMQ routing id a member's master link connects with."""
    return f"member:{member_uuid}".encode()


def link_identity(peer: bytes) -> bytes:
    """The routing id of the member's link, from the id of either of its two sockets."""
    return peer.removesuffix(CHANNEL_SUFFIX)
