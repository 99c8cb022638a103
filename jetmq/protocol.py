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

This module does no I/O: ``transport.py`` moves the frames.
"""
from __future__ import annotations

import dataclasses
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


class ProtocolError(ValueError):
    """Frames that are not a valid jetmq message of this protocol version."""


def message(cls):
    """Register a frozen dataclass as a wire message, tagged by its class name."""
    cls = dataclass(frozen=True, slots=True)(cls)
    _MESSAGE_TYPES[cls.__name__] = cls
    return cls


def _nested(cls):
    """A frozen dataclass used inside messages (not a message by itself)."""
    return dataclass(frozen=True, slots=True)(cls)


# ---------------------------------------------------------------------------------
# Shared records


@_nested
class MemberInfo:
    """A member as the master sees it; ``address`` is its data-plane host:port."""

    uuid: str
    address: str
    pid: int
    host: str
    forked: bool


# ---------------------------------------------------------------------------------
# Member <-> master


@message
class Hello:
    """A member announces itself; the master answers Welcome or Refused."""

    member_uuid: str
    pid: int
    host: str
    data_address: str
    forked: bool
    cluster_name: str


@message
class Welcome:
    """The master accepted a member into the cluster."""

    master_uuid: str
    heartbeat_interval_ms: int
    heartbeat_timeout_ms: int
    membership_version: int


@message
class Refused:
    """The master refuses a peer: a wrong cluster name, or a member it does not know."""

    reason: str


@message
class Heartbeat:
    """A sign of life; sent both ways every heartbeat interval."""


@message
class Goodbye:
    """A member leaves the cluster on its own accord (graceful shutdown)."""

    reason: str


@message
class Shutdown:
    """The master tells a member to stop and exit."""

    reason: str


@message
class MasterLost:
    """In-process only: a member's link thread tells its main thread the master is gone."""

    reason: str
    refused: bool  # the master refused us: do not try again


# ---------------------------------------------------------------------------------
# Client <-> master (requests carry a correlation id, replies echo it)


@message
class ClusterRequest:
    """Ask for the cluster's state and members (`jet cluster`)."""


@message
class ClusterReply:
    state: str
    version: str
    cluster_name: str
    master_pid: int
    master_host: str
    membership_version: int
    members: tuple[MemberInfo, ...]


@message
class StopClusterRequest:
    """Ask the master to stop every member and then itself (`jet-stop`)."""


@message
class StopClusterReply:
    master_pid: int
    member_pids: tuple[int, ...]


# ---------------------------------------------------------------------------------
# Jobs: client <-> master


@_nested
class JobSummary:
    """A job as clients see it; times are epoch milliseconds."""

    job_id: int
    name: str | None
    status: str  # a JobStatus name
    submission_time: int
    completion_time: int | None
    failure_text: str | None


@message
class SubmitJob:
    """Submit a job: its JobConfig as a dict, and its DAG pickled by cloudpickle (opaque here)."""

    config: dict[str, typing.Any]
    dag: bytes
    if_absent: bool


@message
class GetJob:
    job_id: int


@message
class GetJobs:
    name: str | None


@message
class JobReply:
    job: JobSummary


@message
class JobsReply:
    jobs: tuple[JobSummary, ...]


@message
class JobAction:
    """cancel, suspend, resume or restart a job (JobAction.ACTIONS)."""

    ACTIONS = ("cancel", "suspend", "resume", "restart")
    job_id: int
    action: str


@message
class ExportSnapshot:
    """Export a job's state as the named snapshot (and cancel it); answered when done."""

    job_id: int
    name: str
    cancel: bool


@_nested
class SnapshotSummary:
    name: str
    creation_time: int
    size_bytes: int
    job_id: int
    job_name: str | None


@message
class GetSnapshots:
    """List the named (exported) snapshots."""


@message
class SnapshotsReply:
    snapshots: tuple[SnapshotSummary, ...]


@message
class DeleteSnapshot:
    name: str


@message
class Ack:
    """A request that returns nothing succeeded."""


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
# Executions: master <-> member


@message
class InitExecution:
    """Prepare an execution: the DAG (opaque to the master) and the plan for this member."""

    job_id: int
    execution_id: int
    member_index: int  # this member's index in ``members``
    members: tuple[MemberInfo, ...]
    partition_owners: tuple[int, ...]  # member index owning each partition
    config: dict[str, typing.Any]
    dag: bytes
    restored_snapshot_id: int  # -1: the job starts with empty state
    restore: bytes | None  # this member's snapshot entries: packed [(vertex, [(partition, key, value)])]


@message
class ExecutionInitialized:
    execution_id: int
    failure: str | None


@message
class StartExecution:
    execution_id: int


@message
class TerminateExecution:
    execution_id: int
    reason: str


@message
class ExecutionFinished:
    """A member's part of an execution ended: completed (no failure), failed, or
    stopped because the master told it to terminate (``terminated``)."""

    execution_id: int
    failure: str | None
    terminated: bool


@message
class StartSnapshot:
    """Phase 1 of a snapshot: sources save their state and emit the barrier."""

    execution_id: int
    snapshot_id: int
    terminal: bool


@message
class SnapshotChunk:
    """Some of a vertex's state entries on one member: a packed list of (partition, key, value)."""

    execution_id: int
    snapshot_id: int
    vertex: str
    entries: bytes


@message
class SnapshotPhase1Done:
    """Every processor of this member saved its state (after the chunks, on the same link)."""

    execution_id: int
    snapshot_id: int
    failure: str | None


@message
class SnapshotPhase2:
    """The snapshot was committed (success) or abandoned: transactional sinks act on it."""

    execution_id: int
    snapshot_id: int
    success: bool


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


@message
class ErrorReply:
    """A request failed; ``error_type`` names a class in :mod:`jetmq.errors`."""

    error_type: str
    message: str


# ---------------------------------------------------------------------------------
# Encoding


def encode(msg, corr: int = 0) -> list[bytes]:
    """The frames of ``msg``; ``corr`` is the correlation id (0 for none)."""
    name = type(msg).__name__
    if _MESSAGE_TYPES.get(name) is not type(msg):
        raise TypeError(f"{name} is not a protocol message")
    blobs: list[bytes] = []
    body = {f.name: _to_json(getattr(msg, f.name), blobs) for f in dataclasses.fields(msg)}
    return [
        MAGIC,
        _HEADER.pack(PROTOCOL_VERSION, corr),
        name.encode("ascii"),
        json.dumps(body, separators=(",", ":")).encode("utf-8"),
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
        body = json.loads(frames[3])
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # deep nesting: RecursionError
        raise ProtocolError(f"undecodable frame: {type(e).__name__}") from None
    cls = _MESSAGE_TYPES.get(name)
    if cls is None:
        raise ProtocolError(f"unknown message type {name!r}")
    return _from_json(body, cls, frames[4:]), corr


def _to_json(value, blobs: list[bytes]):
    if isinstance(value, (bytes, bytearray, memoryview)):
        blobs.append(bytes(value))
        return {"$blob": len(blobs) - 1}
    if dataclasses.is_dataclass(value):
        return {f.name: _to_json(getattr(value, f.name), blobs) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [_to_json(v, blobs) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json(v, blobs) for k, v in value.items()}
    return value


def _from_json(value, hint, blobs: list[bytes]):
    """Convert ``value`` to ``hint``'s type, or raise ProtocolError."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ProtocolError(f"{hint.__name__}: expected an object")
        hints = _type_hints(hint)
        fields = {f.name for f in dataclasses.fields(hint)}
        if set(value) != fields:
            raise ProtocolError(f"{hint.__name__}: fields {sorted(value)}, expected {sorted(fields)}")
        return hint(**{k: _from_json(value[k], hints[k], blobs) for k in fields})
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


_HINTS_CACHE: dict[type, dict] = {}


def _type_hints(cls) -> dict:
    hints = _HINTS_CACHE.get(cls)
    if hints is None:
        hints = _HINTS_CACHE[cls] = typing.get_type_hints(cls)
    return hints


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
    """All registered message classes by name (for tests and diagnostics)."""
    return dict(_MESSAGE_TYPES)

