"""What the NEXMark bench's two engines share: the queries' parameters, the result
summaries the sinks make, the check against the plain-Python references, and the
latency percentiles.

A sink does not send its results back (q0 alone would be every event): each
sink processor (jetmq) or worker (Bytewax) reduces what it received to a summary,
and the bench adds the summaries up and compares them with the reference's:

- streams and windowed queries: `(rows, fingerprint)`, the number of rows and the
  sum of crc32(repr(row)) mod 2**64 over them: equal multisets of rows give equal
  summaries, and a missing, extra or changed row changes it (but for a crc32
  collision, odds about 2**-32);
- q4 and q6 (their results are updates of a map): the last value per key, compared
  key by key with the reference's map (relative tolerance 1e-9).

Latency (both engines alike): a result's latency is the wall clock when the sink
receives it minus its due time, the event time of the result: an event's own time
for q0-q2, the event that made it for q3 (the person or the auction) and q4/q6 (the
update of the rolling aggregate comes from the session window's result), and for a
window's result the time of its last possible event, end - 1 ms. The generator is
paced so that an event is emitted when the wall clock reaches its time (event time
= wall time), so this is the time from when the result was due to when it was out.
"""
from __future__ import annotations

import math
import zlib
from collections.abc import Iterable
from typing import Any

from bench.nexmark import reference

__all__ = ["MAPS", "PARAMS", "SEED", "Summary", "check", "expected_summary", "fingerprint", "merge_maps",
           "merge_summaries", "percentile"]

SEED = 7
MAPS = frozenset({"q4", "q6"})
PARAMS: dict[str, dict[str, int]] = {
    # windows smaller than the standard 10 s / 5 s: a few seconds of a paced run at a
    # few thousand events/s make enough windows for latency percentiles
    "q5": {"window_ms": 1_000, "period_ms": 250},
    "q7": {"window_ms": 250},
    "q8": {"window_ms": 250},
}
_MASK = (1 << 64) - 1

Summary = tuple[int, int]
"""(rows, fingerprint) of a stream of rows."""


def fingerprint(rows: Iterable[Any]) -> Summary:
    crc = zlib.crc32
    count = total = 0
    for row in rows:
        count += 1
        total += crc(repr(row).encode())
    return count, total & _MASK


def merge_summaries(summaries: Iterable[Summary]) -> Summary:
    count = total = 0
    for c, t in summaries:
        count += c
        total += t
    return count, total & _MASK


def merge_maps(maps: Iterable[dict]) -> dict:
    """The union of the sink processors' maps (each key is on one processor)."""
    merged: dict = {}
    for m in maps:
        merged.update(m)
    return merged


def expected_summary(name: str, events: list) -> Summary | dict:
    result = reference.expected(name, events, **PARAMS.get(name, {}))
    return dict(result) if name in MAPS else fingerprint(result)


def check(name: str, got: Summary | dict, expected: Summary | dict) -> str | None:
    """None if `got` equals the reference's `expected`, else what differs."""
    if name in MAPS:
        if sorted(got) != sorted(expected):
            return f"{name}: {len(got)} keys, the reference has {len(expected)} (or other keys)"
        wrong = [k for k, v in expected.items() if not math.isclose(got[k], v, rel_tol=1e-9)]
        return f"{name}: {len(wrong)} values differ from the reference, e.g. key {wrong[0]}" if wrong else None
    if tuple(got) != tuple(expected):
        return f"{name}: {got[0]:,} rows (fingerprint {got[1]:x}), the reference has {expected[0]:,} " \
               f"(fingerprint {expected[1]:x})"
    return None


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]
