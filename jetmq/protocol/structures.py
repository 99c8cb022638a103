"""Messages of named structures (maps, lists, observables): clients read them from the
master, and jobs' sinks on members write them."""
from __future__ import annotations

from jetmq.protocol.codec import message


# ---------------------------------------------------------------------------------
# Reading: client <-> master


@message
class GetMap:
    name: str


@message
class GetList:
    name: str


@message
class GetObservable:
    """Read an observable's items from sequence ``from_seq`` on (at most ``max_items``)."""

    name: str
    from_seq: int
    max_items: int


@message
class ObservableItems:
    """Items ``first_seq`` .. ``first_seq + len - 1`` (a pickled list of pickled items);
    ``done`` once the job writing it ended and every item was read; ``error`` if it failed."""

    first_seq: int
    items: bytes
    done: bool
    error: str | None


@message
class SerializedReply:
    """A named map's entries or a list's items: a pickled list of pickled keys/values/items."""

    data: bytes


# ---------------------------------------------------------------------------------
# Writing: member -> master


@message
class MapPutAll:
    """A sink's batch for a named map: a pickled list of (pickled key, pickled value)."""

    name: str
    entries: bytes


@message
class ObservableAttach:
    """A job's observable sink started: the observable ends when that job ends."""

    name: str
    job_id: int


@message
class ObservablePublish:
    """A sink's batch for an observable: a pickled list of pickled items."""

    name: str
    items: bytes


@message
class ListAddAll:
    """A sink's batch for a named list: a pickled list of pickled items."""

    name: str
    items: bytes


__all__ = [name for name, value in list(globals().items()) if isinstance(value, type) and value.__module__ == __name__]
