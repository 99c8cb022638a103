"""The control-plane protocol: one frozen dataclass per message, and its wire form.

Every message between a client or member and the master is one of the dataclasses
below. On the wire a message is a multipart ZeroMQ message::

    [MAGIC, header, type name, JSON body, blob 0, blob 1, ...]

``header`` packs the protocol version and a correlation id (requests carry one,
replies echo it). Fields typed ``bytes`` travel as blob frames, untouched, so a
pickled DAG is never base64-encoded; every other field goes into the JSON body.
The body is checked against the dataclass's type hints when decoded, so a foreign
or malformed message raises :class:`ProtocolError` and never reaches a handler with
fields of the wrong type. JSON rather than pickle keeps the control port from
unpickling whatever a stranger sends to it.

Building a frozen dataclass costs a fraction of a millisecond, and the protocol has some
seventy: a message module is imported when one of its types is first decoded or named
(``protocol.Hello``), through ``DEFINED_IN``, so `jet list-jobs` builds the few classes
it exchanges rather than all of them.

This module does no I/O: ``jetmq.transport`` moves the frames.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import json
import pickle
import struct
import types
import typing
from dataclasses import dataclass

MAGIC = b"JETMQ"
PROTOCOL_VERSION = 1
_HEADER = struct.Struct("!BQ")  # protocol version, correlation id

_MESSAGE_TYPES: dict[str, type] = {}

#: The module of this package that defines each class of the protocol (the messages, and
#: the records inside them). A module registers its messages when imported; the table
#: says which to import for a name, and tests/unit/test_protocol.py holds it to the modules.
DEFINED_IN: dict[str, str] = {name: module for module, names in {
    "cluster": ("MemberInfo", "Hello", "Welcome", "Refused", "Heartbeat", "Goodbye", "GoodbyeAck", "LeaveRequest",
                "StopMemberRequest", "Shutdown", "MasterLost", "GoodbyeOnChannel", "ClusterRequest", "ClusterReply",
                "StopClusterRequest", "StopClusterReply", "MasterStatsRequest", "MasterStatsReply"),
    "replies": ("Ack", "ErrorReply"),
    "jobs": ("FailureInfo", "JobSummary", "SubmitJob", "GetJob", "GetJobs", "JobReply", "JobsReply", "JobAction"),
    "snapshots": ("ExportSnapshot", "SnapshotSummary", "GetSnapshots", "SnapshotsReply", "DeleteSnapshot"),
    "descriptions": ("GetJobMetrics", "JobMetricsReply", "DescribeJob", "ExecutionInfo", "DescribedMember",
                     "JobDescription"),
    "structures": ("GetMap", "GetList", "GetObservable", "ObservableItems", "SerializedReply", "MapPutAll",
                   "ObservableAttach", "ObservablePublish", "ListAddAll"),
    "executions": ("FileRef", "SnapshotFiles", "InitExecution", "ExecutionInitialized", "PeerUnreachable",
                   "ExecutionMetrics", "StartExecution", "TerminateExecution", "ExecutionFinished",
                   "StartSnapshot", "SnapshotPhase1Done", "SnapshotPhase2", "StoreWrite", "StoreRead",
                   "StoreReply"),
    "logs": ("JobLogLine", "JobLogLines", "GetJobLogs", "KeptLogLine", "JobLogsReply"),
    "waits": ("WaitJob", "WaitObservable"),
}.items() for name in names}


class ProtocolError(ValueError):
    """Frames that are not a valid jetmq message of this protocol version."""


def message(cls):
    """Register a frozen dataclass as a wire message, tagged by its class name."""
    cls = dataclass(frozen=True, slots=True)(cls)
    _MESSAGE_TYPES[cls.__name__] = cls
    return cls


def nested(cls):
    """A frozen dataclass used inside messages (not a message by itself)."""
    return dataclass(frozen=True, slots=True)(cls)


# ---------------------------------------------------------------------------------
# Encoding


def encode(msg, corr: int = 0) -> list[bytes]:
    """The frames of ``msg``; ``corr`` is the correlation id (0 for none)."""
    name = type(msg).__name__
    if _MESSAGE_TYPES.get(name) is not type(msg):
        raise TypeError(f"{name} is not a protocol message")
    blobs: list[bytes] = []
    body = {name: _to_json(getattr(msg, name), blobs) for name in _shape(type(msg)).names}
    return [
        MAGIC,
        _HEADER.pack(PROTOCOL_VERSION, corr),
        name.encode("ascii"),
        _json_encode(body).encode("utf-8"),
        *blobs,
    ]


def decode(frames: list[bytes]) -> tuple[object, int]:
    """The message and correlation id in ``frames``; ProtocolError if malformed."""
    if len(frames) < 4 or frames[0] != MAGIC:
        raise ProtocolError("not a jetmq message (bad magic or too few frames)")
    if len(frames[1]) != _HEADER.size:
        raise ProtocolError("bad header frame")
    version, corr = _HEADER.unpack(frames[1])
    if version != PROTOCOL_VERSION:
        raise ProtocolError(f"protocol version {version}, expected {PROTOCOL_VERSION}")
    try:
        name = frames[2].decode("ascii")
        body = _json_decode(frames[3].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # deep nesting: RecursionError
        raise ProtocolError(f"undecodable frame: {type(e).__name__}") from None
    cls = _MESSAGE_TYPES.get(name) or _imported_message_type(name)
    if cls is None:
        raise ProtocolError(f"unknown message type {name!r}")
    return _from_json(body, cls, frames[4:]), corr


def protocol_class(name: str) -> type | None:
    """The class of the protocol called ``name`` (a message or a record), its module
    imported if it was not yet; None if the protocol has no class of that name."""
    module = DEFINED_IN.get(name)
    if module is None:
        return None
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


def _imported_message_type(name: str) -> type | None:
    """The message type ``name``, its module imported (registering its messages); None for a
    record, which is never a message of its own, as for a name the protocol does not know."""
    protocol_class(name)
    return _MESSAGE_TYPES.get(name)


def _to_json(value, blobs: list[bytes]):
    if value is None or type(value) in _JSON_SCALARS:
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        blobs.append(bytes(value))
        return {"$blob": len(blobs) - 1}
    if dataclasses.is_dataclass(value):
        return {name: _to_json(getattr(value, name), blobs) for name in _shape(type(value)).names}
    if isinstance(value, (tuple, list)):
        return [_to_json(v, blobs) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json(v, blobs) for k, v in value.items()}
    return value


def _from_json(value, hint, blobs: list[bytes]):
    """Convert ``value`` to ``hint``'s type, or raise ProtocolError."""
    if hint in _EXACT_SCALARS:  # the common case first: a str, int or bool field
        if type(value) is not hint:
            raise ProtocolError(f"expected {hint.__name__}, got {type(value).__name__}")
        return value
    if hint in _SHAPES or dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ProtocolError(f"{hint.__name__}: expected an object")
        shape = _shape(hint)
        if value.keys() != shape.name_set:
            raise ProtocolError(f"{hint.__name__}: fields {sorted(value)}, expected {sorted(shape.name_set)}")
        return hint(**{name: _from_json(value[name], field_hint, blobs) for name, field_hint in shape.fields})
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None
        for option in typing.get_args(hint):
            if option is not type(None):
                try:
                    return _from_json(value, option, blobs)
                except ProtocolError:
                    pass
        raise ProtocolError(f"{value!r} does not fit {hint}")
    if origin is tuple:
        (item_hint, _ellipsis) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ProtocolError(f"expected a list for {hint}")
        return tuple(_from_json(v, item_hint, blobs) for v in value)
    if origin is dict:
        key_hint, value_hint = typing.get_args(hint)
        if not isinstance(value, dict) or key_hint is not str:
            raise ProtocolError(f"expected an object for {hint}")
        return {k: _from_json(v, value_hint, blobs) for k, v in value.items()}
    if hint is bytes:
        if not (isinstance(value, dict) and set(value) == {"$blob"} and type(value["$blob"]) is int):
            raise ProtocolError("expected a blob reference")
        index = value["$blob"]
        if not 0 <= index < len(blobs):
            raise ProtocolError(f"blob {index} missing")
        return blobs[index]
    if hint is float and type(value) is int:
        return float(value)
    if hint is typing.Any:
        return value
    if type(value) is not hint:
        raise ProtocolError(f"expected {getattr(hint, '__name__', hint)}, got {type(value).__name__}")
    return value


_JSON_SCALARS = frozenset((str, int, float, bool))
_EXACT_SCALARS = frozenset((str, int, bool))  # a float field also takes an int (JSON has one number)
_json_encode = json.JSONEncoder(separators=(",", ":")).encode
_json_decode = json.JSONDecoder().decode


class _Shape:
    """A protocol class's fields and their type hints, worked out once per class: a
    member encodes and decodes a few messages a second, each after a sleep, when every
    call made on the way costs several times what it costs warm."""

    __slots__ = ("names", "name_set", "fields")

    def __init__(self, cls: type):
        hints = typing.get_type_hints(cls)
        self.names = tuple(f.name for f in dataclasses.fields(cls))
        self.name_set = frozenset(self.names)
        self.fields = tuple((name, hints[name]) for name in self.names)


_SHAPES: dict[type, _Shape] = {}


def _shape(cls: type) -> _Shape:
    shape = _SHAPES.get(cls)
    if shape is None:
        shape = _SHAPES[cls] = _Shape(cls)
    return shape


class _BytesOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only lists, tuples and bytes are allowed")


def pack_serialized(values: list) -> bytes:
    """A list of already-serialized values (bytes, or tuples of bytes) as one blob."""
    return pickle.dumps(values, protocol=5)


def unpack_serialized(blob: bytes) -> list:
    """The list in ``blob``; it may hold only lists, tuples and bytes, so loading runs no code.

    Raises ProtocolError for anything else.
    """
    try:
        values = _BytesOnlyUnpickler(io.BytesIO(blob)).load()
    except Exception as e:
        raise ProtocolError(f"malformed batch of serialized values: {e}") from None
    if not isinstance(values, list):
        raise ProtocolError("a batch of serialized values must be a list")
    return values


def message_types() -> dict[str, type]:
    """All message classes by name, every module imported (for tests and diagnostics)."""
    for module in sorted(set(DEFINED_IN.values())):
        importlib.import_module(f"{__package__}.{module}")
    return dict(_MESSAGE_TYPES)

