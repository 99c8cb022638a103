"""The NEXMark event generator, as a pure function of (config, position), and as a
jetmq streaming source.

The stream follows the standard NEXMark generator (Apache Beam's
sdks/java/testing/nexmark, which Flink's nexmark repository also uses), written
anew here in Python; what is the same is the shape of the data, not the random
numbers:

- Event numbers cycle through blocks of 50: number n is a Person when n % 50 < 1,
  an Auction when n % 50 < 4, else a Bid (Person : Auction : Bid = 1 : 3 : 46).
  Person ids and auction ids count the persons and auctions so far, from 1000.
- Event number n has event time `base_time_ms + n * 1000 // events_per_second`.
- Out of order: the event at position i of the stream has the number
  `(i // g) * g + (i * 953) % g` for `out_of_order_group` g (a permutation of each
  group of g positions; g = 1, the standard default, is in order). Its time is its
  number's, so no event is more than `max_delay_ms()` behind an earlier one.
- An auction's seller is, with probability 1 - 1/hot_sellers_ratio, the "hot" seller
  (the first person of the current block of 100 persons), else one of the last
  `num_active_people` persons or up to 10 not yet created. Its category is one of 5
  from 10; its initial bid a price, its reserve the initial bid plus another price;
  it lasts 1 ms to twice the event time in which `num_in_flight_auctions` more
  auctions are made.
- A bid's auction is, with probability 1 - 1/hot_auction_ratio, the hot auction
  (the first of the current block of 100 auctions), else one of the last
  `num_in_flight_auctions` auctions or up to 10 not yet created; its bidder the hot
  bidder (the second person of the block of 100) with probability
  1 - 1/hot_bidders_ratio, else an active person as for sellers. A price is
  `round(10 ** (6 * u) * 100)` cents, u uniform in [0, 1).
- Names, e-mail addresses, credit cards, cities and US states (AZ, CA, ID, OR, WA,
  WY) as the standard's; `extra` pads each event to about avg_*_bytes.

Random draws come from a SplitMix64 stream seeded with (seed, event number), so
event i is computed from (config, i) alone: a source split over many processors
needs no coordination, and plain Python (bench.nexmark.reference) sees the same
events with `events(config, count)`.

`nexmark_source(config, max_events)` is the jetmq source: every processor of the
cluster runs one instance (`local_parallelism` per member); processor k of n emits
the positions k, k + n, k + 2n, ... below `max_events`, with each event's
`date_time` as its native timestamp. Read it with
`with_native_timestamps(config.max_delay_ms())`. Unpaced (the default) it emits as
fast as the pipeline takes events; `paced=True` emits each event once the wall clock
reaches its (in-order) event time, so make the config with
`GeneratorConfig.starting_now(...)` to run at `events_per_second` with event time =
wall time (latency = sink wall clock - event time). Each instance saves its next
position in snapshots; a job restored on another number of processors skips
exactly the positions the snapshot's instances had emitted.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from bench.nexmark.model import Auction, Bid, Event, Person
from jetmq.pipeline import SourceBuilder, StreamSource

__all__ = [
    "AUCTION_PROPORTION",
    "FIRST_AUCTION_ID",
    "FIRST_CATEGORY_ID",
    "FIRST_PERSON_ID",
    "NUM_CATEGORIES",
    "PERSON_PROPORTION",
    "PROPORTION_DENOMINATOR",
    "GeneratorConfig",
    "event_at",
    "events",
    "nexmark_source",
]

FIRST_PERSON_ID = 1000
FIRST_AUCTION_ID = 1000
FIRST_CATEGORY_ID = 10
NUM_CATEGORIES = 5
PERSON_PROPORTION = 1
AUCTION_PROPORTION = 3
BID_PROPORTION = 46
PROPORTION_DENOMINATOR = PERSON_PROPORTION + AUCTION_PROPORTION + BID_PROPORTION
PERSON_ID_LEAD = 10
"""How many ids beyond the last person made a random seller or bidder may be."""
AUCTION_ID_LEAD = 10
"""How many ids beyond the last auction made a random bid's auction may be."""
HOT_BLOCK = 100
"""Hot sellers, bidders and auctions are the first ids of each block of this many."""
_SHUFFLE = 953
"""The multiplier that permutes positions within an out-of-order group (a prime)."""

US_STATES = ("AZ", "CA", "ID", "OR", "WA", "WY")
US_CITIES = ("Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle",
             "Kent", "Cheyenne")
FIRST_NAMES = ("Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter")
LAST_NAMES = ("Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris")


@dataclass(frozen=True)
class GeneratorConfig:
    """What the stream looks like; the defaults are the standard NEXMark ones."""

    seed: int = 0
    events_per_second: int = 10_000
    """Event-time rate: event number n happens at base_time_ms + n * 1000 // rate."""
    base_time_ms: int = 0
    out_of_order_group: int = 1
    """Positions are shuffled within groups of this many (1: in order)."""
    num_active_people: int = 1000
    num_in_flight_auctions: int = 100
    hot_auction_ratio: int = 2
    hot_sellers_ratio: int = 4
    hot_bidders_ratio: int = 4
    avg_person_bytes: int = 200
    avg_auction_bytes: int = 500
    avg_bid_bytes: int = 100

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if type(value) is not int:
                raise TypeError(f"GeneratorConfig.{field.name} must be an int, got {value!r}")
        for name in ("events_per_second", "out_of_order_group", "num_active_people", "num_in_flight_auctions",
                     "hot_auction_ratio", "hot_sellers_ratio", "hot_bidders_ratio"):
            if getattr(self, name) < 1:
                raise ValueError(f"GeneratorConfig.{name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def starting_now(cls, **fields: Any) -> GeneratorConfig:
        """A config whose event time starts at the wall clock now (for paced sources)."""
        return cls(base_time_ms=int(time.time() * 1000), **fields)

    def event_number(self, position: int) -> int:
        """The event number (which decides the event's kind, ids, data and time) at
        `position` of the stream."""
        g = self.out_of_order_group
        if g == 1:
            return position
        return position - position % g + position * _SHUFFLE % g

    def time_of(self, number: int) -> int:
        """The event time (ms) of event number `number`."""
        return self.base_time_ms + number * 1000 // self.events_per_second

    def max_delay_ms(self) -> int:
        """The most an event's time may be below that of an event before it in the
        stream (or in any processor's share of it): the allowed lag that makes no
        event late."""
        g = self.out_of_order_group
        return -(-(g - 1) * 1000 // self.events_per_second)

    def auction_horizon_events(self) -> int:
        """Events between an auction and the one num_in_flight_auctions after it."""
        return self.num_in_flight_auctions * PROPORTION_DENOMINATOR // AUCTION_PROPORTION

    def max_auction_length_ms(self) -> int:
        """An upper bound of `expires - date_time` over all auctions."""
        horizon = -(-self.auction_horizon_events() * 1000 // self.events_per_second)
        return max(2 * horizon, 1)


# ---- random draws: SplitMix64 seeded by (seed, event number) ---------------------------------

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def _mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


class _Draws:
    """Random numbers of one event. `below(b)` takes digits of base b out of a 64-bit
    word (refilled when fewer than 2**20 * b values are left, so the bias is below
    2**-20); `unit()` uses a whole word."""

    __slots__ = ("_state", "_word", "_room")

    def __init__(self, seed: int, number: int) -> None:
        self._state = _mix((seed * 0xD1B54A32D192ED03 + number * _GOLDEN + 0x632BE59BD9B4E019) & _MASK)
        self._word = 0
        self._room = 0

    def _next(self) -> int:
        self._state = state = (self._state + _GOLDEN) & _MASK
        return _mix(state)

    def below(self, bound: int) -> int:
        if self._room < bound << 20:
            self._word = self._next()
            self._room = 1 << 64
        word = self._word
        self._word = word // bound
        self._room //= bound
        return word % bound

    def unit(self) -> float:
        return (self._next() >> 11) / 9007199254740992.0


def _make_pool(size: int) -> str:
    draws = _Draws(0x5EED, 0)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return "".join(" " if draws.below(13) == 0 else letters[draws.below(26)] for _ in range(size))


_POOL = _make_pool(8192)
"""Random text the strings are cut from: an event's strings are slices at random offsets."""


def _string(draws: _Draws, max_length: int) -> str:
    length = 3 + draws.below(max_length - 2)
    offset = draws.below(len(_POOL) - max_length)
    return _POOL[offset:offset + length].strip() or "x"


def _extra(draws: _Draws, current_size: int, average_size: int) -> str:
    """Filler bringing an event of `current_size` bytes to about `average_size` (+-20%)."""
    wanted = average_size - current_size
    if wanted <= 0:
        return ""
    delta = round(wanted * 0.2)
    size = wanted - delta + draws.below(2 * delta + 1)
    offset = draws.below(len(_POOL) - size) if size < len(_POOL) else 0
    return _POOL[offset:offset + size]


def _price(draws: _Draws) -> int:
    return round(10.0 ** (draws.unit() * 6.0) * 100.0)


# ---- ids ---------------------------------------------------------------------------------------

def last_person(number: int) -> int:
    """The id (from 0) of the last person made at or before event number `number`."""
    epoch, offset = divmod(number, PROPORTION_DENOMINATOR)
    if offset >= PERSON_PROPORTION:
        offset = PERSON_PROPORTION - 1
    return epoch * PERSON_PROPORTION + offset


def last_auction(number: int) -> int:
    """The id (from 0) of the last auction made at or before event number `number`."""
    epoch, offset = divmod(number, PROPORTION_DENOMINATOR)
    if offset < PERSON_PROPORTION:
        epoch -= 1
        offset = AUCTION_PROPORTION - 1
    elif offset >= PERSON_PROPORTION + AUCTION_PROPORTION:
        offset = AUCTION_PROPORTION - 1
    else:
        offset -= PERSON_PROPORTION
    return epoch * AUCTION_PROPORTION + offset


def _random_person(config: GeneratorConfig, number: int, draws: _Draws) -> int:
    people = last_person(number) + 1
    active = min(people, config.num_active_people)
    return people - active + draws.below(active + PERSON_ID_LEAD)


def _random_auction(config: GeneratorConfig, number: int, draws: _Draws) -> int:
    newest = last_auction(number)
    oldest = max(newest - config.num_in_flight_auctions, 0)
    return oldest + draws.below(newest - oldest + 1 + AUCTION_ID_LEAD)


# ---- events ------------------------------------------------------------------------------------

def _person(config: GeneratorConfig, number: int, ts: int, draws: _Draws) -> Person:
    name = f"{FIRST_NAMES[draws.below(len(FIRST_NAMES))]} {LAST_NAMES[draws.below(len(LAST_NAMES))]}"
    email = f"{_string(draws, 7)}@{_string(draws, 5)}.com"
    card = " ".join(f"{draws.below(10000):04d}" for _ in range(4))
    city = US_CITIES[draws.below(len(US_CITIES))]
    state = US_STATES[draws.below(len(US_STATES))]
    size = 8 + len(name) + len(email) + len(card) + len(city) + len(state)
    return Person(FIRST_PERSON_ID + last_person(number), name, email, card, city, state, ts,
                  _extra(draws, size, config.avg_person_bytes))


def _auction(config: GeneratorConfig, number: int, ts: int, draws: _Draws) -> Auction:
    if draws.below(config.hot_sellers_ratio) > 0:
        seller = last_person(number) // HOT_BLOCK * HOT_BLOCK
    else:
        seller = _random_person(config, number, draws)
    category = FIRST_CATEGORY_ID + draws.below(NUM_CATEGORIES)
    initial_bid = _price(draws)
    horizon = config.time_of(number + config.auction_horizon_events()) - ts
    expires = ts + 1 + draws.below(max(2 * horizon, 1))
    name = _string(draws, 20)
    description = _string(draws, 100)
    reserve = initial_bid + _price(draws)
    size = 8 + len(name) + len(description) + 40
    return Auction(FIRST_AUCTION_ID + last_auction(number), name, description, initial_bid, reserve, ts, expires,
                   FIRST_PERSON_ID + seller, category, _extra(draws, size, config.avg_auction_bytes))


def _bid(config: GeneratorConfig, number: int, ts: int, draws: _Draws) -> Bid:
    if draws.below(config.hot_auction_ratio) > 0:
        auction = last_auction(number) // HOT_BLOCK * HOT_BLOCK
    else:
        auction = _random_auction(config, number, draws)
    if draws.below(config.hot_bidders_ratio) > 0:
        bidder = last_person(number) // HOT_BLOCK * HOT_BLOCK + 1
    else:
        bidder = _random_person(config, number, draws)
    price = _price(draws)
    return Bid(FIRST_AUCTION_ID + auction, FIRST_PERSON_ID + bidder, price, ts,
               _extra(draws, 32, config.avg_bid_bytes))


def event_at(config: GeneratorConfig, position: int) -> Event:
    """The event at `position` (0, 1, 2, ...) of the stream."""
    number = config.event_number(position)
    ts = config.time_of(number)
    draws = _Draws(config.seed, number)
    kind = number % PROPORTION_DENOMINATOR
    if kind < PERSON_PROPORTION:
        return _person(config, number, ts, draws)
    if kind < PERSON_PROPORTION + AUCTION_PROPORTION:
        return _auction(config, number, ts, draws)
    return _bid(config, number, ts, draws)


def events(config: GeneratorConfig, count: int, start: int = 0) -> Iterator[Event]:
    """The events at positions start, ..., start + count - 1, in stream order."""
    for position in range(start, start + count):
        yield event_at(config, position)


# ---- the jetmq source --------------------------------------------------------------------------

FILL_BATCH = 256
"""Events one call of the source makes at most (a call holds the member's loop)."""


class _SourceState:
    """One instance of the source: it emits positions k, k + n, ... (k its global
    index, n the total parallelism) below max_events."""

    __slots__ = ("config", "max_events", "paced", "batch", "index", "parallelism", "next", "old_parallelism",
                 "old_next", "skip_below")

    def __init__(self, config: GeneratorConfig, max_events: int | None, paced: bool, batch: int,
                 index: int, parallelism: int) -> None:
        self.config = config
        self.max_events = max_events
        self.paced = paced
        self.batch = batch
        self.index = index
        self.parallelism = parallelism
        self.next = index
        # after a restore on another parallelism: which positions the old instances emitted
        self.old_parallelism = 0
        self.old_next: list[int] = []
        self.skip_below = 0

    def emitted_before(self, position: int) -> bool:
        return position < self.skip_below and position < self.old_next[position % self.old_parallelism]


def _create(config: GeneratorConfig, max_events: int | None, paced: bool, batch: int, context: Any) -> _SourceState:
    return _SourceState(config, max_events, paced, batch, context.global_index, context.total_parallelism)


def _fill(state: _SourceState, buffer: Any) -> None:
    config, limit, step = state.config, state.max_events, state.parallelism
    position = state.next
    now = int(time.time() * 1000) if state.paced else None
    made = 0
    add = buffer.add
    while made < state.batch and (limit is None or position < limit):
        if state.skip_below and state.emitted_before(position):
            position += step
            continue
        if now is not None and config.time_of(position) > now:
            break  # not due yet (paced by the in-order time of the position)
        event = event_at(config, position)
        add(event, event.date_time)
        position += step
        made += 1
    state.next = position
    if limit is not None and position >= limit:
        buffer.close()


def _save(state: _SourceState) -> tuple[int, int, int]:
    return (state.parallelism, state.index, state.next)


def _restore(state: _SourceState, saved: list) -> None:
    old_parallelism = saved[0][0]
    next_of = {index: nxt for _n, index, nxt in saved}
    if old_parallelism == state.parallelism and state.index in next_of:
        state.next = next_of[state.index]
        return
    if sorted(next_of) != list(range(old_parallelism)):
        raise RuntimeError(f"nexmark source: the snapshot has the positions of instances {sorted(next_of)}, "
                           f"not of all {old_parallelism}")
    state.old_parallelism = old_parallelism
    state.old_next = [next_of[k] for k in range(old_parallelism)]
    state.skip_below = max(state.old_next)
    low = min(state.old_next)  # every position below it was emitted
    state.next = low + (state.index - low) % state.parallelism


def nexmark_source(config: GeneratorConfig, max_events: int | None = None, *, paced: bool = False,
                   local_parallelism: int = 1, batch: int = FILL_BATCH, name: str = "nexmark") -> StreamSource:
    """The NEXMark stream as a jetmq source with native timestamps (see the module
    doc): `local_parallelism` instances on every member, the first `max_events`
    events (None: no end) split among them. Read it with
    `p.read_from(source).with_native_timestamps(config.max_delay_ms())`."""
    if max_events is not None and (type(max_events) is not int or max_events < 0):
        raise ValueError(f"nexmark_source: max_events must be an int >= 0 or None, got {max_events!r}")
    if type(batch) is not int or batch < 1:
        raise ValueError(f"nexmark_source: batch must be an int >= 1, got {batch!r}")
    return (SourceBuilder.timestamped_stream(name, partial(_create, config, max_events, bool(paced), batch))
            .fill_buffer_fn(_fill)
            .create_snapshot_fn(_save)
            .restore_snapshot_fn(_restore)
            .distributed(local_parallelism)
            .build())
