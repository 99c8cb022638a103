"""The control protocol: every message round-trips, and decode rejects anything else with ProtocolError.

Instances are built generically from each message's type hints, so a message type
added later is covered without touching this file (a field type the builder does not
know fails loudly). No message carries ``bytes`` yet, so test-only message types
with blobs, dicts and optionals are registered for the tests that need them.
"""
import dataclasses
import importlib
import json
import pkgutil
import random
import string
import struct
import subprocess
import sys
import types
import typing

import pytest

from jetmq import protocol
from jetmq.protocol import codec
from jetmq.protocol import MAGIC, PROTOCOL_VERSION, MemberInfo, ProtocolError, decode, encode, message_types

pytestmark = pytest.mark.timeout(60)

HEADER = struct.Struct("!BQ")  # as documented in protocol.py: version, correlation id
MAX_CORR = 2**64 - 1
FUZZ_SEED = 20200307
FUZZ_CASES = 2000


# ---- test-only message types (registered per test with monkeypatch) ----------------------


@dataclasses.dataclass(frozen=True, slots=True)
class BlobCarrierMsg:
    """Exercises every field shape the codec supports: blobs, nested records, dicts, optionals."""

    name: str
    payload: bytes
    parts: tuple[bytes, ...]
    members: tuple[MemberInfo, ...]
    by_key: dict[str, bytes]
    maybe_blob: bytes | None
    maybe_count: int | None
    ratio: float
    flag: bool


@dataclasses.dataclass(frozen=True, slots=True)
class TwoBlobsMsg:
    first: bytes
    second: bytes


TEST_TYPES = (BlobCarrierMsg, TwoBlobsMsg)


@pytest.fixture
def blob_types(monkeypatch):
    for cls in TEST_TYPES:
        monkeypatch.setitem(codec._MESSAGE_TYPES, cls.__name__, cls)
    return TEST_TYPES


# ---- building instances from type hints ---------------------------------------------------


def sample(hint, rng: random.Random):
    """A random value of type ``hint``."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        return hint(**{f.name: sample(hints[f.name], rng) for f in dataclasses.fields(hint)})
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        return sample(rng.choice(options), rng) if rng.random() < 0.8 else None
    if hint is type(None):
        return None
    if origin is tuple:
        item_hint, _ellipsis = typing.get_args(hint)
        return tuple(sample(item_hint, rng) for _ in range(rng.randint(0, 3)))
    if origin is dict:
        _key_hint, value_hint = typing.get_args(hint)
        return {random_text(rng): sample(value_hint, rng) for _ in range(rng.randint(0, 3))}
    if hint is bytes:
        return rng.randbytes(rng.choice([0, 1, 7, 300]))
    if hint is bool:
        return rng.random() < 0.5
    if hint is int:
        return rng.choice([0, 1, -1, 2**31, 2**63 - 1, -(2**63), rng.randint(-10**6, 10**6)])
    if hint is float:
        return rng.choice([0.0, -1.5, 1e300, rng.random()])
    if hint is str:
        return random_text(rng)
    if hint is typing.Any:  # travels as plain JSON: no bytes, no tuples, no NaN
        return rng.choice([None, True, 3, -2.5, random_text(rng), [1, "a", None], {"k": [1, {"n": 2}]}])
    raise TypeError(f"the test cannot build a value of {hint!r}: teach sample() about it")


def random_text(rng: random.Random) -> str:
    alphabet = string.printable + "éß漢字🙂\u0000\"\\"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))


def fields_of(cls) -> dict:
    return typing.get_type_hints(cls)


def with_body(frames: list[bytes], body) -> list[bytes]:
    return [*frames[:3], json.dumps(body).encode(), *frames[4:]]


def body_of(frames: list[bytes]) -> dict:
    return json.loads(frames[3])


ALL_TYPES = sorted(message_types().items())
TYPES_WITH_FIELDS = [(name, cls) for name, cls in ALL_TYPES if dataclasses.fields(cls)]


def test_every_message_is_a_frozen_dataclass_named_for_its_registry_key():
    assert ALL_TYPES, "no message types registered"
    for name, cls in ALL_TYPES:
        assert cls.__name__ == name
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen


# ---- where each class is defined: the table that loads message modules on first use ---------


def message_modules() -> dict[str, types.ModuleType]:
    """Every module of the package but codec, imported, by its short name."""
    return {info.name: importlib.import_module(f"{protocol.__name__}.{info.name}")
            for info in pkgutil.iter_modules(protocol.__path__) if info.name != "codec"}


def test_defined_in_names_every_class_of_every_message_module_in_its_module():
    defined = {}
    for short_name, module in message_modules().items():
        classes = {name for name, value in vars(module).items()
                   if isinstance(value, type) and value.__module__ == module.__name__}
        assert sorted(module.__all__) == sorted(classes), short_name
        defined.update(dict.fromkeys(classes, short_name))
    assert codec.DEFINED_IN == defined


def test_every_message_and_every_record_is_in_the_table_and_the_records_decode_as_nothing():
    assert set(message_types()) <= set(codec.DEFINED_IN)
    for name in set(codec.DEFINED_IN) - set(message_types()):  # the records inside messages
        cls = getattr(protocol, name)
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, name
        frames = encode(protocol.Heartbeat(0))
        with pytest.raises(ProtocolError, match="unknown message type"):
            decode([frames[0], frames[1], name.encode(), b"{}"])


def test_the_package_names_every_class_and_nothing_else():
    for name in codec.DEFINED_IN:
        assert getattr(protocol, name) is codec.protocol_class(name) and getattr(protocol, name).__name__ == name
    assert set(codec.DEFINED_IN) <= set(protocol.__all__) and set(protocol.__all__) <= set(dir(protocol))
    with pytest.raises(AttributeError):
        protocol.NoSuchMessage  # noqa: B018 - the access is the test
    assert codec.protocol_class("__class__") is None and codec.protocol_class("codec") is None


def test_a_fresh_process_imports_only_the_message_modules_it_uses():
    code = """if True:
        import json, sys
        from jetmq import protocol
        def loaded(): return sorted(m for m in sys.modules if m.startswith("jetmq.protocol."))
        print(loaded())
        frames = [protocol.MAGIC, bytes([protocol.PROTOCOL_VERSION]) + (7).to_bytes(8, "big"), b"WaitJob",
                  json.dumps({"job_id": 1, "known_status": "RUNNING", "timeout_ms": 5}).encode()]
        msg, corr = protocol.decode(frames)
        print(type(msg).__module__, corr, loaded())
        protocol.GetJobs(None)
        print(loaded())
        from jetmq.protocol import *  # noqa: F403 - what a module that wants everything may do
        print(loaded() == sorted(f"jetmq.protocol.{m}" for m in ["codec", *set(protocol.DEFINED_IN.values())]))
    """
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "['jetmq.protocol.codec']",
        "jetmq.protocol.waits 7 ['jetmq.protocol.codec', 'jetmq.protocol.waits']",
        "['jetmq.protocol.codec', 'jetmq.protocol.jobs', 'jetmq.protocol.waits']",
        "True"]


# ---- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("name,cls", ALL_TYPES, ids=[n for n, _ in ALL_TYPES])
def test_every_message_type_round_trips_through_encode_and_decode(name, cls):
    rng = random.Random(name)
    for case in range(25):
        # Given a random instance of the type and a correlation id
        msg = sample(cls, rng)
        corr = rng.choice([0, 1, MAX_CORR, rng.randint(0, MAX_CORR)])
        # When it is encoded and decoded
        frames = encode(msg, corr)
        # Then the same message and id come back, from frames that are all bytes
        assert all(isinstance(f, bytes) for f in frames)
        assert frames[0] == MAGIC and frames[2] == name.encode()
        assert decode(frames) == (msg, corr), f"case {case}: {msg!r}"


def test_member_info_tuples_round_trip_inside_a_cluster_reply():
    members = tuple(MemberInfo(f"uuid-{i}", f"127.0.0.1:{5000 + i}", 100 + i, "host", i % 2 == 0, "") for i in range(5))
    reply = protocol.ClusterReply("ACTIVE", "0.1.0", "jet", 42, "host", 7, members, (0, 0, 12_000, 0, 3), (0, 1, 0, 0, 2),
                                    ("member slot 1: not respawned",))
    decoded, corr = decode(encode(reply, 9))
    assert decoded == reply and corr == 9
    assert all(type(m) is MemberInfo for m in decoded.members)
    assert type(decoded.members) is tuple


def test_messages_with_blobs_round_trip_and_blobs_travel_as_frames(blob_types):
    rng = random.Random(1)
    for _ in range(50):
        msg = sample(BlobCarrierMsg, rng)
        frames = encode(msg, 5)
        blob_count = 1 + len(msg.parts) + len(msg.by_key) + (msg.maybe_blob is not None)
        assert len(frames) == 4 + blob_count  # every bytes value is a frame of its own
        assert decode(frames) == (msg, 5)


def test_blob_frames_are_not_base64_or_json_encoded(blob_types):
    payload = bytes(range(256)) * 4
    frames = encode(TwoBlobsMsg(payload, b""), 0)
    assert frames[4:] == [payload, b""]
    assert body_of(frames) == {"first": {"$blob": 0}, "second": {"$blob": 1}}


def test_encode_refuses_what_is_not_a_registered_message():
    with pytest.raises(TypeError):
        encode(MemberInfo("u", "a", 1, "h", True, ""))  # a nested record, not a message
    with pytest.raises(TypeError):
        encode("Heartbeat")
    with pytest.raises(TypeError):
        encode(BlobCarrierMsg("n", b"", (), (), {}, None, None, 0.0, False))  # not registered here


# ---- decode rejects malformed frames ----------------------------------------------------------


def valid_frames(corr: int = 3) -> list[bytes]:
    return encode(protocol.Goodbye("bye"), corr)


@pytest.mark.parametrize("magic", [b"", b"JETMQ ", b"jetmq", b"JETM", b"\x00" * 5, b"ZMTP"])
def test_decode_rejects_wrong_magic(magic):
    frames = valid_frames()
    with pytest.raises(ProtocolError):
        decode([magic, *frames[1:]])


@pytest.mark.parametrize("count", [0, 1, 2, 3])
def test_decode_rejects_too_few_frames(count):
    with pytest.raises(ProtocolError):
        decode(valid_frames()[:count])


@pytest.mark.parametrize("header", [b"", b"\x01", HEADER.pack(1, 0)[:-1], HEADER.pack(1, 0) + b"\x00", b"x" * 64])
def test_decode_rejects_a_header_of_the_wrong_length(header):
    frames = valid_frames()
    with pytest.raises(ProtocolError):
        decode([frames[0], header, *frames[2:]])


@pytest.mark.parametrize("version", [0, PROTOCOL_VERSION + 1, 255])
def test_decode_rejects_another_protocol_version(version):
    frames = valid_frames()
    with pytest.raises(ProtocolError, match="version"):
        decode([frames[0], HEADER.pack(version, 1), *frames[2:]])


@pytest.mark.parametrize("name", [b"NoSuchMsg", b"MemberInfo", b"heartbeat", b"", b"Heartbeat ", b"\xff\xfe",
                                  b"ProtocolError", b"__class__"])
def test_decode_rejects_unknown_message_types(name):
    frames = encode(protocol.Heartbeat(0))
    with pytest.raises(ProtocolError):
        decode([frames[0], frames[1], name, frames[3]])


@pytest.mark.parametrize("body", [b"", b"{", b"{'reason': 'x'}", b"\xff\xfe\x00", b"reason=x", b"{\"reason\": }",
                                  b"NaN", b"[]", b"1", b"null", b"\"text\"", b"true"])
def test_decode_rejects_a_body_that_is_not_a_json_object(body):
    frames = valid_frames()
    with pytest.raises(ProtocolError):
        decode([*frames[:3], body])


def test_decode_rejects_a_deeply_nested_json_body_with_protocol_error():
    # json.loads raises RecursionError (not ValueError) past ~1,000 levels of nesting:
    # a 100 kB frame of '[' must be a ProtocolError like any other garbage
    frames = valid_frames()
    for body in (b"[" * 100_000, b'{"a":' * 100_000):
        with pytest.raises(ProtocolError):
            decode([*frames[:3], body])


@pytest.mark.parametrize("name,cls", TYPES_WITH_FIELDS, ids=[n for n, _ in TYPES_WITH_FIELDS])
def test_decode_rejects_a_body_with_a_missing_or_an_extra_field(name, cls):
    frames = encode(sample(cls, random.Random(name)))
    body = body_of(frames)
    for field in body:
        with pytest.raises(ProtocolError):
            decode(with_body(frames, {k: v for k, v in body.items() if k != field}))
    with pytest.raises(ProtocolError):
        decode(with_body(frames, {**body, "unexpected": 1}))
    with pytest.raises(ProtocolError):
        decode(with_body(frames, {}))


def test_decode_rejects_an_extra_field_in_a_fieldless_message():
    frames = encode(protocol.ClusterRequest())
    with pytest.raises(ProtocolError):
        decode(with_body(frames, {"reason": "x"}))


def wrong_values(hint):
    """JSON values that must not decode as ``hint``."""
    origin = typing.get_origin(hint)
    not_str = [1, 1.5, True, None, [], {}]
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        good = {f.name: json_sample(hints[f.name]) for f in dataclasses.fields(hint)}
        broken = [[], "x", None, 1]
        for name, field_hint in hints.items():
            broken.append({k: v for k, v in good.items() if k != name})  # missing
            broken += [{**good, name: bad} for bad in wrong_values(field_hint)]  # wrong type inside
        broken.append({**good, "extra": 1})
        return broken
    if origin in (typing.Union, types.UnionType):
        (option,) = [o for o in typing.get_args(hint) if o is not type(None)]  # X | None only
        return [v for v in wrong_values(option) if v is not None]
    if origin is tuple:
        item_hint, _ = typing.get_args(hint)
        return ["x", {}, None, 1, *[[json_sample(item_hint), bad] for bad in wrong_values(item_hint)]]
    if origin is dict:
        _k, value_hint = typing.get_args(hint)
        return [[], "x", None, *[{"k": bad} for bad in wrong_values(value_hint)]]
    if hint is bytes:
        return ["text", None, 0, [], {}, {"blob": 0}, {"$blob": "0"}, {"$blob": 0.0}, {"$blob": -1},
                {"$blob": 99}, {"$blob": None}, {"$blob": True}]
    if hint is bool:
        return [1, 0, "true", None, [], 1.0]
    if hint is int:
        return ["1", 1.0, 1.5, True, False, None, [], {}]
    if hint is float:
        return ["1.0", True, None, [], {}]
    if hint is str:
        return not_str
    if hint is typing.Any:
        return []
    raise TypeError(f"no wrong values known for {hint!r}")


def json_sample(hint):
    """A valid JSON value for ``hint`` that needs no blob frames."""
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        return {f.name: json_sample(hints[f.name]) for f in dataclasses.fields(hint)}
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return None
    if origin is tuple:
        return []
    if origin is dict:
        return {}
    return {str: "s", int: 1, bool: True, float: 1.0, typing.Any: None}[hint]


@pytest.mark.parametrize("name,cls", TYPES_WITH_FIELDS, ids=[n for n, _ in TYPES_WITH_FIELDS])
def test_decode_rejects_fields_of_the_wrong_type(name, cls):
    frames = encode(sample(cls, random.Random(name)))
    body = body_of(frames)
    hints = fields_of(cls)
    accepted = []
    for field, hint in hints.items():
        for bad in wrong_values(hint):
            try:
                decode(with_body(frames, {**body, field: bad}))
            except ProtocolError:
                continue
            accepted.append(f"{field}={bad!r}")
    assert not accepted, f"{name} decoded with wrongly typed fields: {accepted}"


def test_decode_rejects_wrongly_typed_fields_inside_nested_member_infos():
    reply = protocol.ClusterReply("ACTIVE", "0.1.0", "jet", 1, "h", 1, (MemberInfo("u", "a:1", 2, "h", True, ""),), (0,),
                                    (0,), ())
    frames = encode(reply)
    body = body_of(frames)
    accepted = []
    for bad_member in wrong_values(MemberInfo):
        try:
            decode(with_body(frames, {**body, "members": [body["members"][0], bad_member]}))
        except ProtocolError:
            continue
        accepted.append(bad_member)
    assert not accepted, f"ClusterReply decoded with bad members: {accepted}"


def test_decode_rejects_wrongly_typed_blob_fields(blob_types):
    frames = encode(TwoBlobsMsg(b"a", b"b"))
    body = body_of(frames)
    accepted = []
    for bad in wrong_values(bytes):
        try:
            decoded, _ = decode(with_body(frames, {**body, "first": bad}))
        except ProtocolError:
            continue
        accepted.append(f"first={bad!r} -> {decoded.first!r}")
    assert not accepted, f"TwoBlobsMsg decoded with bad blob references: {accepted}"


def test_decode_rejects_a_blob_index_out_of_range(blob_types):
    frames = encode(TwoBlobsMsg(b"a", b"b"))
    # the body refers to blob 1, but its frame is missing
    with pytest.raises(ProtocolError, match="blob"):
        decode(frames[:-1])
    with pytest.raises(ProtocolError, match="blob"):
        decode(with_body(frames, {"first": {"$blob": 2}, "second": {"$blob": 0}}))
    with pytest.raises(ProtocolError):
        decode(with_body(frames, {"first": {"$blob": -1}, "second": {"$blob": 0}}))


# ---- fuzz ---------------------------------------------------------------------------------------


def random_json(rng: random.Random, depth: int = 0):
    kinds = ["int", "str", "float", "bool", "null"] + (["list", "dict"] if depth < 6 else [])
    kind = rng.choice(kinds)
    if kind == "int":
        return rng.choice([0, -1, 1, 2**64, rng.randint(-10**9, 10**9)])
    if kind == "str":
        return random_text(rng)
    if kind == "float":
        return rng.choice([0.5, -1e308, float("inf"), float("nan")])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "list":
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = ["$blob", "reason", "pid", "members", "uuid", random_text(rng)]
    return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def random_frames(rng: random.Random) -> list[bytes]:
    """Frames somewhere between noise and a valid message."""
    names = [n.encode() for n, _ in ALL_TYPES]
    valid = encode(sample(rng.choice([c for _, c in ALL_TYPES]), rng), rng.randint(0, MAX_CORR))
    pick = rng.random()
    if pick < 0.3:  # noise
        return [rng.randbytes(rng.randint(0, 40)) for _ in range(rng.randint(0, 7))]
    if pick < 0.6:  # a valid message with bytes flipped, frames dropped or added
        frames = list(valid)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(frames))
            action = rng.random()
            if action < 0.5 and frames[i]:
                data = bytearray(frames[i])
                data[rng.randrange(len(data))] = rng.randrange(256)
                frames[i] = bytes(data)
            elif action < 0.7:
                del frames[i]
                if not frames:
                    break
            elif action < 0.85:
                frames.insert(i, rng.randbytes(rng.randint(0, 16)))
            else:
                frames[i] = frames[i][: rng.randint(0, len(frames[i]))]
        return frames
    # well-formed envelope, random type and random JSON body
    return [MAGIC, HEADER.pack(rng.choice([PROTOCOL_VERSION] * 4 + [0, 2]), rng.randint(0, MAX_CORR)),
            rng.choice(names + [b"Nope", rng.randbytes(4)]),
            json.dumps(random_json(rng)).encode(),
            *[rng.randbytes(rng.randint(0, 8)) for _ in range(rng.randint(0, 2))]]


def test_seeded_fuzz_of_random_frames_raises_nothing_but_protocol_error():
    rng = random.Random(FUZZ_SEED)
    decoded = 0
    for case in range(FUZZ_CASES):
        frames = random_frames(rng)
        try:
            msg, corr = decode(frames)
        except ProtocolError:
            continue
        except Exception as e:  # noqa: BLE001 - the point of the test
            pytest.fail(f"case {case}: decode raised {type(e).__name__}: {e} on {frames!r}")
        # whatever decodes must be a real message with correctly typed fields: encode accepts it
        decoded += 1
        assert type(msg).__name__ in message_types() and 0 <= corr <= MAX_CORR
        assert repr(decode(encode(msg, corr))) == repr((msg, corr)), f"case {case}"  # repr: NaN == NaN
    assert decoded > 0, "the fuzz never produced a valid message: it tests only the first checks"
