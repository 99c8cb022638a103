"""Client requests the master holds until what they wait for changes (WaitJob,
WaitObservable): a change is pushed to the waiting client at once, instead of the
client asking again and again."""
from __future__ import annotations

import logging
import time
from typing import Callable, Hashable

log = logging.getLogger(__name__)

#: The longest the master holds one request, whatever the client asks: a client whose
#: connection went away leaves nothing behind for longer.
MAX_HOLD_S = 30.0


class Waiters:
    """Held requests by what they wait for (a key such as ("job", id)); each has an
    ``answer()`` that replies with things as they are then."""

    def __init__(self):
        self._held: dict[Hashable, list[tuple[float, Callable[[], None]]]] = {}

    def hold(self, key: Hashable, timeout_s: float, answer: Callable[[], None]) -> None:
        deadline = time.monotonic() + min(max(timeout_s, 0.0), MAX_HOLD_S)
        self._held.setdefault(key, []).append((deadline, answer))

    def changed(self, key: Hashable) -> None:
        """What ``key`` names changed: answer every request waiting for it."""
        for _deadline, answer in self._held.pop(key, ()):
            _answer(answer)

    def expire(self, now: float) -> None:
        """Answer the requests held for their whole timeout."""
        for key in [k for k, held in self._held.items() if any(d <= now for d, _a in held)]:
            held = self._held.pop(key)
            keep = [(d, a) for d, a in held if d > now]
            if keep:
                self._held[key] = keep
            for deadline, answer in held:
                if deadline <= now:
                    _answer(answer)

    def __len__(self) -> int:
        return sum(len(held) for held in self._held.values())


def _answer(answer: Callable[[], None]) -> None:
    try:
        answer()
    except Exception:  # one bad answer must not keep the others waiting
        log.exception("answering a held request failed")
