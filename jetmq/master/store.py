"""Named maps and lists held by the master (Jet's IMap and IList), as serialized bytes.

The master runs no user code, so it never unpickles a user's keys or values: a map
holds pickled keys and values, keyed by the pickled key's bytes (as Hazelcast's IMap
compares keys in serialized form: equal keys must serialize equally, which holds for
str, int, tuples of them and most plain data). Members send batches of them as
:func:`jetmq.protocol.pack_serialized` blobs.
"""
from __future__ import annotations

from jetmq.errors import JetError
from jetmq.protocol import pack_serialized, unpack_serialized


class NamedStore:
    """The cluster's named maps and lists, in the master's memory."""

    def __init__(self):
        self._maps: dict[str, dict[bytes, bytes]] = {}
        self._lists: dict[str, list[bytes]] = {}

    def map_put_all(self, name: str, entries_blob: bytes) -> None:
        entries = unpack_serialized(entries_blob)
        if not all(isinstance(e, tuple) and len(e) == 2 and all(isinstance(b, bytes) for b in e) for e in entries):
            raise JetError(f"map '{name}': an entry is not a pair of serialized key and value")
        self._maps.setdefault(name, {}).update(entries)

    def list_add_all(self, name: str, items_blob: bytes) -> None:
        items = unpack_serialized(items_blob)
        if not all(isinstance(item, bytes) for item in items):
            raise JetError(f"list '{name}': an item is not serialized")
        self._lists.setdefault(name, []).extend(items)

    def map_entries_blob(self, name: str) -> bytes:
        return pack_serialized(list(self._maps.get(name, {}).items()))

    def list_items_blob(self, name: str) -> bytes:
        return pack_serialized(self._lists.get(name, []))
