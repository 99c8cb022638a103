"""The NEXMark events: a Person joins the auction site, an Auction opens, a Bid is made.

The field layout is the standard one (Apache Beam's and Flink's NEXMark model), in
snake case. Times are event times in ms; prices are integer cents. Events are named
tuples: cheap to make and to pickle, and their fields can be read by name
(`bid.price`) or by position (`bid[2]`), which jetmq turns into C getters when used
as a key function.

The stream mixes the three kinds; tell them apart with `type(e) is Bid`, or with the
`is_person` / `is_auction` / `is_bid` predicates below.
"""
from __future__ import annotations

from typing import NamedTuple, Union

__all__ = ["Auction", "Bid", "Event", "Person", "is_auction", "is_bid", "is_person"]


class Person(NamedTuple):
    """Someone who registers on the site (the seller of auctions, the bidder of bids)."""

    id: int
    name: str
    email_address: str
    credit_card: str
    city: str
    state: str
    date_time: int
    extra: str


class Auction(NamedTuple):
    """An item put up for sale by `seller` in `category`, open from `date_time`
    (inclusive) to `expires` (exclusive)."""

    id: int
    item_name: str
    description: str
    initial_bid: int
    reserve: int
    date_time: int
    expires: int
    seller: int
    category: int
    extra: str


class Bid(NamedTuple):
    """A bid of `price` cents by person `bidder` on auction `auction`."""

    auction: int
    bidder: int
    price: int
    date_time: int
    extra: str


Event = Union[Person, Auction, Bid]


def is_person(event: Event) -> bool:
    return type(event) is Person


def is_auction(event: Event) -> bool:
    return type(event) is Auction


def is_bid(event: Event) -> bool:
    return type(event) is Bid
