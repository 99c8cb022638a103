"""The control-plane protocol: one frozen dataclass per message, and its wire form.

``codec`` defines the wire form and the registry; the other modules the messages, one
module per conversation: ``cluster`` (membership, the cluster's state), ``replies`` (Ack,
ErrorReply), ``jobs``, ``snapshots``, ``descriptions`` (`jet describe`), ``structures``
(maps, lists, observables), ``executions`` (master and members), ``logs`` and ``waits``.
Everything is re-exported here, so callers write ``protocol.Hello``; a message module is
imported when one of its classes is first named or decoded, so a process builds the
dataclasses of the conversations it has, not all of them (see codec.DEFINED_IN).
"""
from jetmq.protocol.codec import (
    DEFINED_IN,
    MAGIC,
    PROTOCOL_VERSION,
    ProtocolError,
    decode,
    encode,
    message_types,
    pack_serialized,
    protocol_class,
    unpack_serialized,
)

__all__ = ["MAGIC", "PROTOCOL_VERSION", "ProtocolError", "decode", "encode", "message_types", "pack_serialized",
           "unpack_serialized", *DEFINED_IN]


def __getattr__(name: str):
    """``protocol.Hello`` (or ``from jetmq.protocol import Hello``): the class, from its module."""
    cls = protocol_class(name)
    if cls is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = cls  # asked once: later lookups find it without this function
    return cls


def __dir__() -> list[str]:
    """Every name, those of the classes whose modules are not imported yet included."""
    return sorted({*globals(), *DEFINED_IN})
