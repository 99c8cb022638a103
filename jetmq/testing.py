"""Helpers for tests of jetmq and of users' own jobs."""
from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")

#: How often wait_until re-checks its condition.
POLL_INTERVAL_S = 0.01


def wait_until(condition: Callable[[], T], timeout_s: float, message: str | Callable[[], str]) -> T:
    """Poll ``condition`` until it returns a truthy value, which is returned.

    Raises AssertionError with ``message`` (a string, or a callable giving one, to
    describe the state at the time of failure) after ``timeout_s`` seconds.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout_s:.1f} s: {text}")
        time.sleep(POLL_INTERVAL_S)
