"""Flake ids: generation, printing and parsing as in Jet (docs/jet-compatibility.md §2)."""

import threading
import time
from datetime import datetime, timezone

import pytest

from jetmq.ids import (
    CHANNEL_SUFFIX,
    EPOCH_START_MS,
    MAX_NODE_ID,
    FlakeIdGenerator,
    id_from_string,
    id_timestamp_ms,
    id_to_string,
    link_identity,
    member_identity,
)

pytestmark = pytest.mark.timeout(30)

SEED_ID_STRING = "0401-9f77-b9c0-0001"  # from the seed page's suspend example
SEED_ID = 0x0401_9F77_B9C0_0001
IDS_PER_MS = 64  # 6 bits of sequence
A_TIME_MS = 1_583_593_189_095  # 2020-03-07T14:59:49.095Z


class FakeClock:
    """A millisecond clock that returns what the test sets."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def test_seed_example_parses_and_prints_back():
    assert id_from_string(SEED_ID_STRING) == SEED_ID
    assert id_to_string(SEED_ID) == SEED_ID_STRING


def test_seed_example_decodes_to_its_submission_time():
    # The page shows submissionTime=2020-03-07T15:59:49.234 (CET); the id was drawn just before.
    assert id_timestamp_ms(SEED_ID) == A_TIME_MS
    assert datetime.fromtimestamp(A_TIME_MS / 1000, timezone.utc).isoformat() == (
        "2020-03-07T14:59:49.095000+00:00"
    )


def test_small_and_zero_ids_are_zero_padded():
    assert id_to_string(0) == "0000-0000-0000-0000"
    assert id_to_string(0x1_0000) == "0000-0000-0001-0000"


def test_negative_ids_print_as_64_bit_twos_complement():
    assert id_to_string(-1) == "ffff-ffff-ffff-ffff"
    assert id_to_string(-(1 << 63)) == "8000-0000-0000-0000"
    assert id_to_string((1 << 63) - 1) == "7fff-ffff-ffff-ffff"


def test_ids_outside_a_java_long_are_refused():
    with pytest.raises(ValueError):
        id_to_string(1 << 63)
    with pytest.raises(ValueError):
        id_to_string(-(1 << 63) - 1)


@pytest.mark.parametrize(
    "value", [0, 1, SEED_ID, (1 << 63) - 1, -1, -(1 << 63), -12345, 0x00FF_00FF_00FF_00FF]
)
def test_round_trip_over_the_whole_signed_range(value):
    assert id_from_string(id_to_string(value)) == value


def test_upper_case_parses_and_prints_lower_case():
    assert id_from_string("0401-9F77-B9C0-0001") == SEED_ID
    assert id_to_string(id_from_string("ABCD-EF01-2345-6789")) == "abcd-ef01-2345-6789"


@pytest.mark.parametrize(
    "text",
    [
        "0401-9f77-b9c0",
        "zzzz-9f77-b9c0-0001",
        " 0401-9f77-b9c0-0001",
        "0401-9f77-b9c0-0001 ",
        "0401-9f77-b9c0-0001\n",
        "0401 9f77 b9c0 0001",
        "0401_9f77_b9c0_0001",
        "04019f77b9c00001",
        "0401-9f77-b9c0-00001",
        "0401-9f77-b9c0-001",
        "0x01-9f77-b9c0-0001",
        "０４０１-9f77-b9c0-0001",  # full-width digits are not hex digits
        "hello-world",
        "",
        None,
    ],
)
def test_malformed_strings_are_rejected(text):
    assert id_from_string(text) is None


def test_id_layout_is_timestamp_sequence_node():
    gen = FlakeIdGenerator(node_id=7, clock=FakeClock(A_TIME_MS))
    first, second = gen.new_id(), gen.new_id()
    assert first == (A_TIME_MS - EPOCH_START_MS) << 22 | 0 << 16 | 7
    assert second == (A_TIME_MS - EPOCH_START_MS) << 22 | 1 << 16 | 7
    assert id_timestamp_ms(first) == A_TIME_MS


def test_when_clock_frozen_then_ids_increase_and_borrow_the_next_millisecond():
    # Given a clock that never moves
    gen = FlakeIdGenerator(node_id=1, clock=FakeClock(A_TIME_MS))

    # When more than 64 ids are drawn
    ids = [gen.new_id() for _ in range(10_000)]

    # Then they are unique, strictly increasing, and the 65th is in the next ms
    assert all(a < b for a, b in zip(ids, ids[1:]))
    assert len(set(ids)) == len(ids)
    assert {id_timestamp_ms(i) for i in ids[:IDS_PER_MS]} == {A_TIME_MS}
    assert id_timestamp_ms(ids[IDS_PER_MS]) == A_TIME_MS + 1
    assert all(i & 0xFFFF == 1 for i in ids)


def test_when_clock_goes_backwards_then_ids_still_increase():
    # Given a generator that has drawn ids at some time
    clock = FakeClock(A_TIME_MS)
    gen = FlakeIdGenerator(node_id=3, clock=clock)
    before = [gen.new_id() for _ in range(5)]

    # When the clock jumps back an hour, then forward a little
    clock.now_ms = A_TIME_MS - 3_600_000
    during = [gen.new_id() for _ in range(5)]
    clock.now_ms = A_TIME_MS + 1
    after = [gen.new_id() for _ in range(5)]

    # Then the ids keep increasing and never fall below the last timestamp
    ids = before + during + after
    assert all(a < b for a, b in zip(ids, ids[1:]))
    assert min(id_timestamp_ms(i) for i in during) == A_TIME_MS


def test_when_clock_moves_forward_then_sequence_restarts_at_zero():
    clock = FakeClock(A_TIME_MS)
    gen = FlakeIdGenerator(node_id=0, clock=clock)
    gen.new_id()
    gen.new_id()
    clock.now_ms += 10
    later = gen.new_id()
    assert id_timestamp_ms(later) == A_TIME_MS + 10
    assert (later >> 16) & (IDS_PER_MS - 1) == 0


def test_ids_from_many_threads_are_unique():
    gen = FlakeIdGenerator(node_id=MAX_NODE_ID)
    per_thread = 2_500
    results: list[list[int]] = [[] for _ in range(4)]

    def draw(out: list[int]) -> None:
        out.extend(gen.new_id() for _ in range(per_thread))

    threads = [threading.Thread(target=draw, args=(out,)) for out in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    all_ids = [i for out in results for i in out]
    assert len(set(all_ids)) == 4 * per_thread
    for out in results:  # each thread sees its own ids increasing
        assert all(a < b for a, b in zip(out, out[1:]))


def test_default_clock_is_the_wall_clock():
    before_ms = time.time_ns() // 1_000_000
    new = FlakeIdGenerator(node_id=0).new_id()
    after_ms = time.time_ns() // 1_000_000
    assert before_ms <= id_timestamp_ms(new) <= after_ms


@pytest.mark.parametrize("node_id", [-1, MAX_NODE_ID + 1])
def test_node_id_out_of_range_is_refused(node_id):
    with pytest.raises(ValueError, match="node_id"):
        FlakeIdGenerator(node_id=node_id)


def test_clock_before_the_flake_epoch_is_refused():
    gen = FlakeIdGenerator(node_id=0, clock=FakeClock(EPOCH_START_MS - 1))
    with pytest.raises(ValueError, match="outside"):
        gen.new_id()


def test_timestamp_of_a_negative_value_is_refused():
    with pytest.raises(ValueError):
        id_timestamp_ms(-1)


def test_both_sockets_of_a_member_map_to_its_link_identity_and_nothing_else_does():
    uuid = "8a4e1c52-0d0b-4c4e-9d8e-3f4a6b2d9c10"
    link = member_identity(uuid)
    assert link == b"member:" + uuid.encode()
    assert link_identity(link) == link
    assert link_identity(link + CHANNEL_SUFFIX) == link
    assert link_identity(b"client-1234") == b"client-1234"
    assert link_identity(link + CHANNEL_SUFFIX + b"x") == link + CHANNEL_SUFFIX + b"x"
