"""The NEXMark queries q0-q8 as Bytewax (0.21) dataflows, for the
bench's side-by-side figures: the same generator events (bench.nexmark.generator,
each worker emitting its share of the positions, as jetmq's source processors do),
the same outputs as bench.nexmark.queries (checked against the same references).

Every stream item is `(ts, value)`: the value's event time in ms travels with it, as
in jetmq, so the sink can measure latency the same way (bench.nexmark.harness).
Windows use Bytewax's EventClock on that ts (as aware UTC datetimes), with windows
aligned to the epoch as jetmq's. Bytewax keeps one event clock per key and has no
watermark coalesced over its inputs, so items of one key coming from the two
workers' sources must not be further apart in event time than the clock's
`wait_for_system_duration`, or they are late and dropped (and the result check
fails): `wait_ms` is that wait, large for unpaced runs (windows then close at the
end of the input), small for paced ones. The first-stage keys must be strings, so
ids are keyed by str(id).

    flow = build("q5", source, sink, wait_ms=100)
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.operators import windowing as win

from bench.nexmark.harness import PARAMS
from bench.nexmark.model import Auction, Bid, Person
from bench.nexmark.queries import (
    AUCTION_SKIP,
    CLOSING,
    EURO_PER_1000_DOLLARS,
    PAIRING,
    Q3_CATEGORY,
    Q3_STATES,
    Q6_LAST,
    _auction_or_bid,
    _average_of_last,
    _closing_order,
    _new_join_state,
    _q3_join,
    _q3_side,
)
from jetmq.pipeline.aggregate import AggregateOperations as ops

__all__ = ["QUERIES", "build"]

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _ts(item: tuple) -> datetime:
    return EPOCH + timedelta(milliseconds=item[0])


def _clock(wait_ms: int, paced: bool) -> win.EventClock:
    # unpaced, event time has nothing to do with the wall clock: do not wake up for it
    return win.EventClock(_ts, timedelta(milliseconds=wait_ms),
                          **({} if paced else {"to_system_utc": lambda _dt: None}))


def _ms(dt: datetime) -> int:
    return (dt - EPOCH) // timedelta(milliseconds=1)


# ---- stateless ---------------------------------------------------------------------------------

def q0(events, **_: Any):
    return events


def _q1(item: tuple) -> tuple | None:
    ts, e = item
    if type(e) is Bid:
        return ts, Bid(e.auction, e.bidder, e.price * EURO_PER_1000_DOLLARS // 1000, e.date_time, e.extra)
    return None


def q1(events, **_: Any):
    return op.filter_map("q1", events, _q1)


def _q2(item: tuple) -> tuple | None:
    ts, e = item
    if type(e) is Bid and e.auction % AUCTION_SKIP == 0:
        return ts, (e.auction, e.price)
    return None


def q2(events, **_: Any):
    return op.filter_map("q2", events, _q2)


# ---- q3: the join in stateful_map --------------------------------------------------------------

_Q3_STATES = frozenset(Q3_STATES)


def _q3_side_item(item: tuple) -> tuple | None:
    side = _q3_side(_Q3_STATES, Q3_CATEGORY, item[1])
    return None if side is None else (item[0], side)


def _q3_mapper(state: list | None, item: tuple) -> tuple[list, list]:
    if state is None:
        state = _new_join_state()
    ts, side = item
    rows = _q3_join(state, side[1], side)
    return state, [(ts, row) for row in rows or ()]


def _values(keyed_item: tuple) -> Any:
    return keyed_item[1]


def q3(events, **_: Any):
    sides = op.filter_map("q3-sides", events, _q3_side_item)
    keyed = op.key_on("q3-key", sides, lambda item: str(item[1][1]))
    joined = op.stateful_map("q3-join", keyed, _q3_mapper)
    return op.flat_map("q3-rows", joined, _values)


# ---- windows -----------------------------------------------------------------------------------

def _window_rows(length_ms: int, period_ms: int, keyed_item: tuple) -> tuple:
    """(key, (window id, value)) -> (end - 1, (start, end, key, value))."""
    key, (window_id, value) = keyed_item
    start = window_id * period_ms
    end = start + length_ms
    return end - 1, (start, end, key, value)


def _bid_item(item: tuple) -> tuple | None:
    return (item[0], item[1].auction) if type(item[1]) is Bid else None


def _q5_best(acc: list, item: tuple) -> list:
    _ts, (_start, _end, auction, count) = item
    if not acc[1] or count > acc[0]:
        acc[0], acc[1] = count, [auction]
    elif count == acc[0]:
        acc[1].append(auction)
    return acc


def _q5_merge(acc: list, other: list) -> list:
    for auction in other[1]:
        _q5_best(acc, (0, (0, 0, auction, other[0])))
    return acc


def _q5_row(window_ms: int, period_ms: int, keyed_item: tuple) -> tuple:
    _key, (window_id, (count, auctions)) = keyed_item
    end = window_id * period_ms + period_ms  # the stage's tumbling window ends with the sliding one
    return end - 1, (end - window_ms, end, tuple(sorted(int(a) for a in auctions)), count)


def q5(events, wait_ms: int, paced: bool, window_ms: int, period_ms: int, **_: Any):
    bids = op.filter_map("q5-bids", events, _bid_item)
    counts = win.count_window("q5-count", bids, _clock(wait_ms, paced),
                              win.SlidingWindower(timedelta(milliseconds=window_ms),
                                                  timedelta(milliseconds=period_ms), EPOCH),
                              lambda item: str(item[1]))
    rows = op.map("q5-counts", counts.down, lambda ki: _window_rows(window_ms, period_ms, ki))
    # the maximum per window: all counts of a window, keyed by one key, in a tumbling
    # window of one period over their timestamps (end - 1)
    everything = op.key_on("q5-all", rows, lambda _item: "all")
    best = win.fold_window("q5-max", everything, _clock(wait_ms, paced),
                           win.TumblingWindower(timedelta(milliseconds=period_ms), EPOCH),
                           lambda: [0, []], _q5_best, _q5_merge)
    return op.map("q5-rows", best.down, lambda ki: _q5_row(window_ms, period_ms, ki))


def _q7_best(acc: list, item: tuple) -> list:
    bid = item[1]
    if not acc[1] or bid.price > acc[0]:
        acc[0], acc[1] = bid.price, [bid]
    elif bid.price == acc[0]:
        acc[1].append(bid)
    return acc


def _q7_merge(acc: list, other: list) -> list:
    for bid in other[1]:
        _q7_best(acc, (0, bid))
    return acc


def _q7_row(window_ms: int, keyed_item: tuple) -> tuple:
    end_ts, (start, end, _key, (price, bids)) = _window_rows(window_ms, window_ms, keyed_item)
    return end_ts, (start, end, price, tuple(sorted(bids)))


def q7(events, wait_ms: int, paced: bool, window_ms: int, **_: Any):
    bids = op.filter("q7-bids", events, lambda item: type(item[1]) is Bid)
    everything = op.key_on("q7-all", bids, lambda _item: "all")
    best = win.fold_window("q7-max", everything, _clock(wait_ms, paced),
                           win.TumblingWindower(timedelta(milliseconds=window_ms), EPOCH),
                           lambda: [None, []], _q7_best, _q7_merge)
    return op.map("q7-rows", best.down, lambda ki: _q7_row(window_ms, ki))


def _q8_side(item: tuple) -> tuple | None:
    ts, e = item
    if type(e) is Person:
        return ts, ("P", e.id, e.name)
    if type(e) is Auction:
        return ts, ("A", e.seller, e.reserve)
    return None


def _q8_rows(window_ms: int, keyed_item: tuple) -> list:
    end_ts, (start, end, key, acc) = _window_rows(window_ms, window_ms, keyed_item)
    name, reserves = PAIRING.export(acc)
    if name is None:
        return []
    return [(end_ts, (start, end, int(key), name, reserve)) for reserve in reserves]


def q8(events, wait_ms: int, paced: bool, window_ms: int, **_: Any):
    sides = op.filter_map("q8-sides", events, _q8_side)
    keyed = op.key_on("q8-key", sides, lambda item: str(item[1][1]))
    pairs = win.fold_window("q8-pair", keyed, _clock(wait_ms, paced),
                            win.TumblingWindower(timedelta(milliseconds=window_ms), EPOCH),
                            PAIRING.create, lambda acc, item: PAIRING.accumulate(acc, item[1]),
                            PAIRING.combine)
    return op.flat_map("q8-rows", pairs.down, lambda ki: _q8_rows(window_ms, ki))


# ---- q4 and q6: winning bids in session windows, then rolling per category / seller ---------------

def _closing_item(item: tuple) -> tuple | None:
    side = _auction_or_bid(item[1])
    return None if side is None else (item[0], side)


def _closing_fold(acc: list, item: tuple) -> list:
    """[CLOSING's accumulator, the session's latest ts]."""
    acc[0] = CLOSING.accumulate(acc[0], item[1])
    acc[1] = max(acc[1], item[0])
    return acc


def _closing_merge(acc: list, other: list) -> list:
    acc[0] = CLOSING.combine(acc[0], other[0])
    acc[1] = max(acc[1], other[1])
    return acc


def _closed(gap_ms: int, keyed_item: tuple) -> tuple | None:
    """A session's winning bid, at the session's end - 1 (its last item + the gap - 1)."""
    _key, (_window_id, (acc, latest)) = keyed_item
    closed = CLOSING.finish(acc)
    return None if closed is None else (latest + gap_ms - 1, closed)


def _winning_bids(events, wait_ms: int, paced: bool, config: Any):
    gap = config.max_auction_length_ms()
    sides = op.filter_map("closing-sides", events, _closing_item)
    keyed = op.key_on("closing-key", sides, lambda item: str(item[1][1]))
    sessions = win.fold_window("closing", keyed, _clock(wait_ms, paced),
                               win.SessionWindower(timedelta(milliseconds=gap)),
                               lambda: [CLOSING.create(), -(1 << 62)], _closing_fold, _closing_merge)
    return op.filter_map("closed", sessions.down, lambda ki: _closed(gap, ki))


def _q4_average(state: list | None, item: tuple) -> tuple[list, tuple]:
    state = state or [0, 0]
    ts, closed = item
    state[0] += closed[4]
    state[1] += 1
    return state, (ts, (closed[1], state[0] / state[1]))


def q4(events, wait_ms: int, paced: bool, config: Any, **_: Any):
    closed = _winning_bids(events, wait_ms, paced, config)
    by_category = op.key_on("q4-key", closed, lambda item: str(item[1][1]))
    return op.map("q4-rows", op.stateful_map("q4-average", by_category, _q4_average), _values)


_LAST = ops.top_n(Q6_LAST, _closing_order)


def _q6_average(state: Any, item: tuple) -> tuple[Any, tuple]:
    ts, closed = item
    state = _LAST.accumulate(_LAST.create() if state is None else state, closed)
    return state, (ts, _average_of_last((closed[2], _LAST.export(state))))


def q6(events, wait_ms: int, paced: bool, config: Any, **_: Any):
    closed = _winning_bids(events, wait_ms, paced, config)
    by_seller = op.key_on("q6-key", closed, lambda item: str(item[1][2]))
    return op.map("q6-rows", op.stateful_map("q6-average", by_seller, _q6_average), _values)


QUERIES = {"q0": q0, "q1": q1, "q2": q2, "q3": q3, "q4": q4, "q5": q5, "q6": q6, "q7": q7, "q8": q8}


def build(name: str, source: Any, sink: Any, wait_ms: int, paced: bool, config: Any) -> Dataflow:
    """The dataflow of query `name`: `source` of `(ts, event)` -> query -> `sink` of
    `(ts, row)` (`config`: the GeneratorConfig, for q4 and q6's session gap)."""
    flow = Dataflow(f"nexmark-{name}")
    events = op.input("events", flow, source)
    out = QUERIES[name](events, wait_ms=wait_ms, paced=paced, config=config, **PARAMS.get(name, {}))
    op.output("sink", out, sink)
    return flow
