"""The NEXMark queries in plain Python over a list of events (in any order), giving
what the jetmq pipelines of bench.nexmark.queries give, in the same shapes (see that
module's doc for the definitions):

    from bench.nexmark.generator import GeneratorConfig, events
    evs = list(events(config, 100_000))
    expected = reference.q5(evs, window_ms=2000, period_ms=1000)

Streams: a list of rows, compared as sorted lists (q0 by (date_time, repr)).
Maps (q4, q6): a dict. Windowed queries: a list of rows starting with (start, end).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from bench.nexmark.generator import FIRST_CATEGORY_ID, GeneratorConfig
from bench.nexmark.model import Auction, Bid, Person
from bench.nexmark.queries import AUCTION_SKIP, EURO_PER_1000_DOLLARS, Q3_STATES, Q6_LAST, WINDOW_PERIOD_MS, \
    WINDOW_SIZE_MS

__all__ = ["closed_auctions", "expected", "q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8"]


def _bids(events: list) -> list[Bid]:
    return [e for e in events if type(e) is Bid]


def q0(events: list, **_: Any) -> list:
    return list(events)


def q1(events: list, **_: Any) -> list[Bid]:
    return [Bid(b.auction, b.bidder, b.price * EURO_PER_1000_DOLLARS // 1000, b.date_time, b.extra)
            for b in _bids(events)]


def q2(events: list, auction_skip: int = AUCTION_SKIP, **_: Any) -> list[tuple[int, int]]:
    return [(b.auction, b.price) for b in _bids(events) if b.auction % auction_skip == 0]


def q3(events: list, states: frozenset = Q3_STATES, category: int = FIRST_CATEGORY_ID,
       **_: Any) -> list[tuple]:
    sellers = {e.id: e for e in events if type(e) is Person and e.state in states}
    rows = []
    for a in events:
        if type(a) is Auction and a.category == category and a.seller in sellers:
            person = sellers[a.seller]
            rows.append((person.name, person.city, person.state, a.id))
    return rows


def closed_auctions(events: list) -> list[tuple]:
    """(auction id, category, seller, expires, price, bidder) of every auction with a
    winning bid: its highest bid in [date_time, expires) at no less than the reserve
    (ties: the earliest, then the lowest bidder id)."""
    auctions = {e.id: e for e in events if type(e) is Auction}
    best: dict[int, Bid] = {}
    for b in _bids(events):
        a = auctions.get(b.auction)
        if a is None or not (a.date_time <= b.date_time < a.expires) or b.price < a.reserve:
            continue
        held = best.get(a.id)
        if held is None or (b.price, -b.date_time, -b.bidder) > (held.price, -held.date_time, -held.bidder):
            best[a.id] = b
    return [(a.id, a.category, a.seller, a.expires, best[a.id].price, best[a.id].bidder)
            for a in auctions.values() if a.id in best]


def q4(events: list, **_: Any) -> dict[int, float]:
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for _id, category, _seller, _expires, price, _bidder in closed_auctions(events):
        totals[category][0] += price
        totals[category][1] += 1
    return {category: total / count for category, (total, count) in totals.items()}


def q5(events: list, window_ms: int = WINDOW_SIZE_MS, period_ms: int = WINDOW_PERIOD_MS,
       **_: Any) -> list[tuple]:
    counts: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for b in _bids(events):
        first_end = b.date_time - b.date_time % period_ms + period_ms
        for end in range(first_end, first_end + window_ms, period_ms):
            counts[end][b.auction] += 1
    rows = []
    for end, per_auction in counts.items():
        most = max(per_auction.values())
        rows.append((end - window_ms, end, tuple(sorted(a for a, n in per_auction.items() if n == most)), most))
    return rows


def q6(events: list, last: int = Q6_LAST, **_: Any) -> dict[int, float]:
    by_seller: dict[int, list[tuple]] = defaultdict(list)
    for closed in closed_auctions(events):
        by_seller[closed[2]].append(closed)
    result = {}
    for seller, closed in by_seller.items():
        latest = sorted(closed, key=lambda c: (c[3], c[0]), reverse=True)[:last]
        result[seller] = sum(c[4] for c in latest) / len(latest)
    return result


def q7(events: list, window_ms: int = WINDOW_SIZE_MS, **_: Any) -> list[tuple]:
    windows: dict[int, list[Bid]] = defaultdict(list)
    for b in _bids(events):
        windows[b.date_time - b.date_time % window_ms].append(b)
    rows = []
    for start, bids in windows.items():
        price = max(b.price for b in bids)
        rows.append((start, start + window_ms, price, tuple(sorted(b for b in bids if b.price == price))))
    return rows


def q8(events: list, window_ms: int = WINDOW_SIZE_MS, **_: Any) -> list[tuple]:
    persons: dict[tuple[int, int], str] = {}
    for p in events:
        if type(p) is Person:
            persons[(p.date_time // window_ms, p.id)] = p.name
    rows = []
    for a in events:
        if type(a) is Auction:
            window = a.date_time // window_ms
            name = persons.get((window, a.seller))
            if name is not None:
                start = window * window_ms
                rows.append((start, start + window_ms, a.seller, name, a.reserve))
    return rows


def expected(query: str, events: list, config: GeneratorConfig | None = None, **params: Any) -> Any:
    """The reference result of query "q0" ... "q8"."""
    return globals()[query](events, **params)
