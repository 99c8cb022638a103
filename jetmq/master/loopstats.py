"""How the master's loop spends its turns: counted, and a slow turn logged with what took it.

The loop is the control plane's heartbeat: while one turn runs, no heartbeat goes out
and no request is answered. A turn over SLOW_TURN_S is a defect to find, so it is
logged with the step that took longest (a message type, or a part of the tick), at
most once a second (with the number of slow turns in between).
"""
from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)

#: A turn of the loop longer than this is logged: heartbeats and requests waited for it.
SLOW_TURN_S = 0.05
#: Slow turns are logged at most this often.
SLOW_TURN_LOG_INTERVAL_S = 1.0


class TurnMeter:
    def __init__(self):
        self.turns = 0
        self.slow_turns = 0
        self.longest_s = 0.0
        self.longest_step = ""
        self._started = 0.0
        self._slowest = ("", 0.0)
        self._next_log = 0.0
        self._unlogged = 0

    def begin(self) -> None:
        self._started = time.monotonic()
        self._slowest = ("", 0.0)

    def step(self, name: str, seconds: float) -> None:
        if seconds > self._slowest[1]:
            self._slowest = (name, seconds)

    def end(self) -> None:
        busy = time.monotonic() - self._started
        self.turns += 1
        if busy > self.longest_s:
            self.longest_s, self.longest_step = busy, self._slowest[0]
        if busy <= SLOW_TURN_S:
            return
        self.slow_turns += 1
        now = time.monotonic()
        if now < self._next_log:
            self._unlogged += 1
            return
        self._next_log = now + SLOW_TURN_LOG_INTERVAL_S
        name, seconds = self._slowest
        more = f" ({self._unlogged} more slow turns since the last report)" if self._unlogged else ""
        self._unlogged = 0
        log.warning("the master's loop was busy for %.0f ms in one turn, %.0f ms of it in %s: heartbeats and "
                    "requests waited%s", busy * 1000, seconds * 1000, name or "(unmeasured)", more)
