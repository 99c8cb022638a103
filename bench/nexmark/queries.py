"""The eight NEXMark queries (0-7 of the benchmark, and 8) as jetmq pipelines.

Each `qN(events, ...)` takes the stream of events (a StreamStage with native
timestamps, as `read_events` makes it) and returns the stage of its results;
`build(query, source, sink, config, **params)` makes the whole Pipeline. The
outputs, and how each query is expressed with the Pipeline API:

q0 pass-through: every event, unchanged (source -> sink).
q1 currency conversion: each Bid with its price in euros, `price * 908 // 1000`
   (integer cents, rounded down: NEXMark's `0.908 * price`, kept exact). filter + map.
q2 selection: `(auction, price)` of the bids whose auction id is a multiple of 123
   (NEXMark's auctionSkip). filter + map.
q3 local item suggestion: `(name, city, state, auction id)` for every auction of
   category 10 whose seller lives in OR, ID or CA. A streaming join by person id:
   persons and category-10 auctions, keyed by person id / seller, meet in
   `map_stateful` (the person, or the auctions waiting for it), then `flat_map`.
   Unlike Beam's, the persons are kept for the whole stream (Beam drops them after
   maxAuctionsWaitingTime, 600 s); `ttl_ms` bounds that state if given.
q4 average closing price per category: `Sinks.map` category -> average over its
   closed auctions of the winning price. The winning bid of an auction is its highest
   bid (ties: the earliest, then the lowest bidder id) made in [date_time, expires)
   at no less than the reserve; auctions without one are left out. Expressed as a
   session window keyed by auction id over auctions and bids (gap = the longest
   auction, so an auction and all its valid bids are in one session, which closes
   after the auction expires), then a rolling average per category. Differences from
   the standard: Beam averages the winning prices in sliding windows
   (windowSizeSec/windowPeriodSec) of the auctions' expiry times; this is the
   Flink-SQL form, the running average over all closed auctions so far.
q5 hot items: for every sliding window, `(start, end, auctions, bids)`: the auctions
   with the most bids in it (all of them when tied, ascending) and that count.
   Keyed sliding window of counts, then a tumbling window of one period over those
   results (a window's result has the timestamp end - 1) keeping the maximum.
q6 average selling price by seller: `Sinks.map` seller -> average winning price of
   the seller's last 10 closed auctions (the closed auctions of q4). "Last" means the
   10 latest by (expires, auction id), the order auctions close in event time, so the
   final value does not depend on the order results arrive in; Beam uses the order
   its trigger sees them. rolling_aggregate(top_n(10)) per seller.
q7 highest bid: for every tumbling window, `(start, end, price, bids)`: the highest
   price and all the bids at that price (sorted). Unkeyed tumbling window with a
   "maximum with ties" aggregate (Beam finds the maximum and filters the window's
   bids with it as a side input: the same result).
q8 monitor new users: `(start, end, person id, name, reserve)` for every person who
   joined in a tumbling window and every auction the same person opened in that
   window. A windowed co-group done as one keyed window over persons and auctions
   (both come from the one event stream), keyed by person id / seller.

Session windows in q4 and q6 group by auction: jetmq runs a session window in one
stage behind an edge partitioned by its key (as Jet's SessionWindowP), so every bid
of an auction meets on one processor whichever member read it.

The window sizes default to the standard ones (10 s windows, 5 s period).
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from bench.nexmark.generator import FIRST_CATEGORY_ID, GeneratorConfig
from bench.nexmark.model import Auction, Bid, Person
from jetmq.pipeline import AggregateOperation, Pipeline, Sink, StreamSource, StreamStage, WindowDefinition
from jetmq.pipeline.aggregate import AggregateOperations as ops

__all__ = ["QUERIES", "build", "max_with_ties", "q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8",
           "read_events", "winning_bids"]

WINDOW_SIZE_MS = 10_000
WINDOW_PERIOD_MS = 5_000
AUCTION_SKIP = 123
Q3_STATES = frozenset({"OR", "ID", "CA"})
Q3_CATEGORY = FIRST_CATEGORY_ID
Q6_LAST = 10
EURO_PER_1000_DOLLARS = 908


def read_events(p: Pipeline, source: StreamSource, config: GeneratorConfig) -> StreamStage:
    """The events of a nexmark_source, with their date_time as event time."""
    return p.read_from(source).with_native_timestamps(config.max_delay_ms())


def build(query: Callable[..., Any], source: StreamSource, sink: Sink, config: GeneratorConfig,
          **params: Any) -> Pipeline:
    """A pipeline: `source` -> `query` -> `sink`."""
    p = Pipeline()
    query(read_events(p, source, config), config=config, **params).write_to(sink)
    return p


# ---- q0, q1, q2 ------------------------------------------------------------------------------

def q0(events: StreamStage, **_: Any) -> StreamStage:
    return events


def _is_bid(event: Any) -> bool:
    return type(event) is Bid


def _to_euros(bid: Bid) -> Bid:
    return Bid(bid.auction, bid.bidder, bid.price * EURO_PER_1000_DOLLARS // 1000, bid.date_time, bid.extra)


def q1(events: StreamStage, **_: Any) -> StreamStage:
    return events.filter(_is_bid).map(_to_euros)


def _selected_bid(skip: int, event: Any) -> tuple[int, int] | None:
    if type(event) is Bid and event.auction % skip == 0:
        return (event.auction, event.price)
    return None


def q2(events: StreamStage, auction_skip: int = AUCTION_SKIP, **_: Any) -> StreamStage:
    return events.map(partial(_selected_bid, auction_skip))


# ---- q3: a streaming join in map_stateful -----------------------------------------------------

def _q3_side(states: frozenset, category: int, event: Any) -> tuple | None:
    """Persons as ("P", id, name, city, state); category auctions as ("A", seller, id)."""
    kind = type(event)
    if kind is Person:
        return ("P", event.id, event.name, event.city, event.state) if event.state in states else \
            ("P", event.id, None, None, None)
    if kind is Auction and event.category == category:
        return ("A", event.seller, event.id)
    return None


def _key1(item: tuple) -> Any:
    return item[1]


def _new_join_state() -> list:
    return [None, []]  # [person: (name, city, state) | False (not in the states) | None (not seen), waiting auctions]


def _q3_join(state: list, key: int, item: tuple) -> list | None:
    if item[0] == "P":
        if item[2] is None:
            state[0] = False
            state[1] = []
            return None
        person = state[0] = item[2:]
        waiting, state[1] = state[1], []
        return [(*person, auction) for auction in waiting] or None
    person = state[0]
    if person is None:
        state[1].append(item[2])
        return None
    if person is False:
        return None
    return [(*person, item[2])]


def _rows(rows: list) -> list:
    return rows


def q3(events: StreamStage, states: frozenset = Q3_STATES, category: int = Q3_CATEGORY,
       ttl_ms: int | None = None, **_: Any) -> StreamStage:
    return (events.map(partial(_q3_side, frozenset(states), category))
            .grouping_key(_key1)
            .map_stateful(_new_join_state, _q3_join, ttl_ms=ttl_ms)
            .flat_map(_rows))


# ---- q4 and q6: winning bids of closed auctions ------------------------------------------------

def _auction_or_bid(event: Any) -> tuple | None:
    """Auctions as ("A", id, date_time, expires, reserve, category, seller), bids as
    ("B", auction, price, date_time, bidder)."""
    kind = type(event)
    if kind is Bid:
        return ("B", event.auction, event.price, event.date_time, event.bidder)
    if kind is Auction:
        return ("A", event.id, event.date_time, event.expires, event.reserve, event.category, event.seller)
    return None


def _bid_rank(bid: tuple) -> tuple:
    """Higher wins: the price, then the earlier bid, then the lower bidder id."""
    return (bid[2], -bid[3], -bid[4])


def _is_valid(auction: tuple, bid: tuple) -> bool:
    return auction[2] <= bid[3] < auction[3] and bid[2] >= auction[4]


def _better(auction: tuple, best: tuple | None, bids: list) -> tuple | None:
    for bid in bids:
        if _is_valid(auction, bid) and (best is None or _bid_rank(bid) > _bid_rank(best)):
            best = bid
    return best


def _new_closing() -> list:
    return [None, None, []]  # [auction, best valid bid, bids waiting for the auction]


def _close_accumulate(acc: list, item: tuple) -> list:
    if item[0] == "A":
        acc[0] = item
        acc[1] = _better(item, acc[1], acc[2])
        acc[2] = []
    elif acc[0] is None:
        acc[2].append(item)
    else:
        acc[1] = _better(acc[0], acc[1], (item,))
    return acc


def _close_combine(acc: list, other: list) -> list:
    auction = acc[0] if acc[0] is not None else other[0]
    if auction is None:
        acc[2] = acc[2] + other[2]
        return acc
    best = _better(auction, acc[1], acc[2])
    best = _better(auction, best, other[2])
    if other[1] is not None:
        best = _better(auction, best, (other[1],))
    acc[0], acc[1], acc[2] = auction, best, []
    return acc


def _close_finish(acc: list) -> tuple | None:
    """(auction id, category, seller, expires, winning price, bidder), None if no winner."""
    auction, best = acc[0], acc[1]
    if auction is None or best is None:
        return None
    return (auction[1], auction[5], auction[6], auction[3], best[2], best[4])


def _copy_closing(acc: list) -> list:
    return [acc[0], acc[1], list(acc[2])]


CLOSING = AggregateOperation(_new_closing, _close_accumulate, _close_combine, None, _copy_closing, _close_finish)
"""An auction's items -> its winning bid (see `_close_finish`)."""


def _window_value(result: Any) -> Any:
    return result.value


def winning_bids(events: StreamStage, config: GeneratorConfig) -> StreamStage:
    """(auction id, category, seller, expires, price, bidder) of every auction with a
    winning bid, once the auction has closed."""
    gap = config.max_auction_length_ms()
    return (events.map(_auction_or_bid)
            .grouping_key(_key1)
            .window(WindowDefinition.session(gap))
            .aggregate(CLOSING)
            .map(_window_value))


def _category(closed: tuple) -> int:
    return closed[1]


def _closing_price(closed: tuple) -> int:
    return closed[4]


def _average_entry(entry: tuple) -> tuple:
    key, (total, count) = entry
    return (key, total / count)


def q4(events: StreamStage, config: GeneratorConfig, **_: Any) -> StreamStage:
    return (winning_bids(events, config)
            .grouping_key(_category)
            .rolling_aggregate(ops.all_of(ops.summing(_closing_price), ops.counting()))
            .map(_average_entry))


def _seller(closed: tuple) -> int:
    return closed[2]


def _closing_order(closed: tuple) -> tuple:
    return (closed[3], closed[0])


def _average_of_last(entry: tuple) -> tuple:
    seller, closed = entry
    return (seller, sum(c[4] for c in closed) / len(closed))


def q6(events: StreamStage, config: GeneratorConfig, last: int = Q6_LAST, **_: Any) -> StreamStage:
    return (winning_bids(events, config)
            .grouping_key(_seller)
            .rolling_aggregate(ops.top_n(last, _closing_order))
            .map(_average_of_last))


# ---- q5, q7: windows --------------------------------------------------------------------------

def _new_best() -> list:
    return [None, []]


def _best_accumulate(key_fn: Callable[[Any], Any], acc: list, item: Any) -> list:
    key = key_fn(item)
    if not acc[1] or key > acc[0]:
        acc[0] = key
        acc[1] = [item]
    elif key == acc[0]:
        acc[1].append(item)
    return acc


def _best_combine(acc: list, other: list) -> list:
    if not other[1]:
        return acc
    if not acc[1] or other[0] > acc[0]:
        acc[0] = other[0]
        acc[1] = list(other[1])
    elif other[0] == acc[0]:
        acc[1].extend(other[1])
    return acc


def _best_export(acc: list) -> tuple:
    return (acc[0], sorted(acc[1]))


def max_with_ties(key_fn: Callable[[Any], Any]) -> AggregateOperation:
    """(greatest key_fn(item), sorted list of the items with it); (None, []) for none."""
    return AggregateOperation(_new_best, partial(_best_accumulate, key_fn), _best_combine, None, _best_export)


def _bid_auction(event: Any) -> int | None:
    return event.auction if type(event) is Bid else None


def _same(item: Any) -> Any:
    return item


def _auction_count(result: Any) -> tuple[int, int]:
    return (result.key, result.value)


def _count(auction_count: tuple[int, int]) -> int:
    return auction_count[1]


def _hot_row(size: int, result: Any) -> tuple:
    count, hottest = result.value
    return (result.end - size, result.end, tuple(auction for auction, _count in hottest), count)


def q5(events: StreamStage, window_ms: int = WINDOW_SIZE_MS, period_ms: int = WINDOW_PERIOD_MS,
       **_: Any) -> StreamStage:
    return (events.map(_bid_auction)
            .grouping_key(_same)
            .window(WindowDefinition.sliding(window_ms, period_ms))
            .aggregate(ops.counting())
            .map(_auction_count)
            .window(WindowDefinition.tumbling(period_ms))
            .aggregate(max_with_ties(_count))
            .map(partial(_hot_row, window_ms)))


def _bid_price(bid: Bid) -> int:
    return bid.price


def _highest_row(result: Any) -> tuple:
    price, bids = result.value
    return (result.start, result.end, price, tuple(bids))


def q7(events: StreamStage, window_ms: int = WINDOW_SIZE_MS, **_: Any) -> StreamStage:
    return (events.filter(_is_bid)
            .window(WindowDefinition.tumbling(window_ms))
            .aggregate(max_with_ties(_bid_price))
            .map(_highest_row))


# ---- q8: a windowed join by key ---------------------------------------------------------------

def _person_or_auction(event: Any) -> tuple | None:
    """Persons as ("P", id, name), auctions as ("A", seller, reserve)."""
    kind = type(event)
    if kind is Person:
        return ("P", event.id, event.name)
    if kind is Auction:
        return ("A", event.seller, event.reserve)
    return None


def _new_pairing() -> list:
    return [None, []]  # [person name, reserves of the person's auctions]


def _pair_accumulate(acc: list, item: tuple) -> list:
    if item[0] == "P":
        acc[0] = item[2]
    else:
        acc[1].append(item[2])
    return acc


def _pair_combine(acc: list, other: list) -> list:
    if other[0] is not None:
        acc[0] = other[0]
    acc[1].extend(other[1])
    return acc


def _pair_export(acc: list) -> tuple:
    return (acc[0], sorted(acc[1]))


PAIRING = AggregateOperation(_new_pairing, _pair_accumulate, _pair_combine, None, _pair_export)


def _new_user_rows(result: Any) -> list:
    name, reserves = result.value
    if name is None:
        return []
    return [(result.start, result.end, result.key, name, reserve) for reserve in reserves]


def q8(events: StreamStage, window_ms: int = WINDOW_SIZE_MS, **_: Any) -> StreamStage:
    return (events.map(_person_or_auction)
            .grouping_key(_key1)
            .window(WindowDefinition.tumbling(window_ms))
            .aggregate(PAIRING)
            .flat_map(_new_user_rows))


QUERIES = {"q0": q0, "q1": q1, "q2": q2, "q3": q3, "q4": q4, "q5": q5, "q6": q6, "q7": q7, "q8": q8}
