"""Requests the master holds until what they wait for changes (WaitJob, WaitObservable)."""
import time

import pytest

from jetmq.master.observables import ObservableStore
from jetmq.master.waiters import MAX_HOLD_S, Waiters
from jetmq.protocol import pack_serialized

pytestmark = pytest.mark.timeout(30)


def test_a_change_answers_every_request_waiting_for_it_and_no_other():
    waiters, answered = Waiters(), []
    waiters.hold(("job", 1), 10, lambda: answered.append("a"))
    waiters.hold(("job", 1), 10, lambda: answered.append("b"))
    waiters.hold(("job", 2), 10, lambda: answered.append("c"))
    waiters.changed(("job", 1))
    assert answered == ["a", "b"]
    waiters.changed(("job", 1))  # answered once only
    assert answered == ["a", "b"] and len(waiters) == 1


def test_a_request_held_its_whole_timeout_is_answered_as_things_are():
    waiters, answered = Waiters(), []
    now = time.monotonic()
    waiters.hold("k", 0.5, lambda: answered.append("short"))
    waiters.hold("k", 5, lambda: answered.append("long"))
    waiters.expire(now + 0.1)
    assert answered == []
    waiters.expire(now + 1)
    assert answered == ["short"] and len(waiters) == 1


def test_the_master_holds_no_request_longer_than_its_limit_whatever_the_client_asks():
    waiters, answered = Waiters(), []
    waiters.hold("k", 10 * MAX_HOLD_S, lambda: answered.append(1))
    waiters.expire(time.monotonic() + MAX_HOLD_S + 0.01)
    assert answered == [1]


def test_an_answer_that_fails_does_not_keep_the_others_waiting():
    waiters, answered = Waiters(), []
    waiters.hold("k", 10, lambda: 1 / 0)
    waiters.hold("k", 10, lambda: answered.append(1))
    waiters.changed("k")
    assert answered == [1]


def test_an_observable_tells_of_items_and_of_its_end_not_of_a_job_attaching():
    store, changes = ObservableStore(), []
    store.on_change = changes.append
    store.attach("o", 7)
    assert changes == [] and not store.has_news("o", 0)
    store.publish("o", pack_serialized([b"item"]))
    assert changes == ["o"] and store.has_news("o", 0) and not store.has_news("o", 1)
    store.job_ended(7, None)
    assert changes == ["o", "o"] and store.has_news("o", 1)
