"""Internals of metrics: user metrics' counters, the processor they count for, and the
form in which a member reports its measurements (see jetmq.core.metrics for the API).

User code calls ``Metrics.metric(name)`` from inside a processor; the engine tells this
module which processor runs (``CURRENT.context``) before it calls the processor, as Jet
does with a thread-local. Every processor runs on its member's one loop thread, so a
plain module-level holder is enough. A user metric lives in the running processor's
``context.metrics`` dict, beside the engine's own counters (e.g. "lateEventsDropped"),
as a ``Metric`` object: the ``user`` tag tells them apart in the reports.

A member's report is lz4-compressed JSON, opaque to the master (which keeps the latest
one of each member and hands them to clients):
``{"ts": epoch ms, "tags": {common tags}, "groups": [[{group tags}, [[name, unit, value,
{extra tags} or null], ...]], ...]}``; a measurement's tags are the common ones, its
group's, its own extra ones, and "metric" and "unit".
"""
from __future__ import annotations

import enum
import json
import operator

import lz4.frame

__all__ = ["CURRENT", "Metric", "Unit", "encode_report", "decode_report"]


class Unit(enum.Enum):
    """The unit of a metric's value (Jet's ``Unit``); a measurement's ``unit`` tag."""

    BYTES = "bytes"
    MS = "ms"
    PERCENT = "percent"
    COUNT = "count"
    BOOLEAN = "boolean"
    ENUM = "enum"


class Metric:
    """A user metric of one processor: a whole number that user code increments,
    decrements or sets; the member reports its value with the processor's tags and
    ``user=true`` (Jet's ``Metric``)."""

    __slots__ = ("name", "unit", "value")

    def __init__(self, name: str, unit: Unit = Unit.COUNT):
        self.name = name
        self.unit = unit
        self.value = 0

    def increment(self, delta: int = 1) -> None:
        self.value += delta

    def decrement(self, delta: int = 1) -> None:
        self.value -= delta

    def set(self, value: int) -> None:
        self.value = operator.index(value)

    def get(self) -> int:
        return self.value

    def __repr__(self) -> str:
        return f"Metric({self.name!r}, {self.value}, {self.unit.value})"


class _Current:
    """The context of the processor the engine is calling (None: none is)."""

    __slots__ = ("context",)

    def __init__(self):
        self.context = None


CURRENT = _Current()


def encode_report(timestamp: int, tags: dict[str, str], groups: list) -> bytes:
    """One report: ``groups`` is a list of [group tags, [[name, unit, value, extra tags or None], ...]]."""
    data = json.dumps({"ts": timestamp, "tags": tags, "groups": groups}, separators=(",", ":"))
    return lz4.frame.compress(data.encode(), compression_level=0)


def decode_report(blob: bytes) -> list[tuple[dict[str, str], int, int]]:
    """(tags, value, timestamp) of every measurement in a report; ValueError if malformed."""
    try:
        report = json.loads(lz4.frame.decompress(blob))
        timestamp, common, groups = report["ts"], report["tags"], report["groups"]
        found = []
        for group_tags, entries in groups:
            base = {**common, **group_tags}
            for name, unit, value, extra in entries:
                tags = {**base, **extra} if extra else dict(base)
                tags["metric"] = name
                tags["unit"] = unit
                found.append((tags, value, timestamp))
    except (ValueError, KeyError, TypeError, RuntimeError) as e:
        raise ValueError(f"a malformed metrics report: {e}") from None
    for tags, value, _ in found:
        if not all(type(k) is str and type(v) is str for k, v in tags.items()) or type(value) not in (int, float):
            raise ValueError("a malformed metrics report: tags must be strings and values numbers")
    if type(timestamp) is not int:
        raise ValueError("a malformed metrics report: its timestamp is not an int")
    return found
