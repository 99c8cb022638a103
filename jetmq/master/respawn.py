"""A self-healing pool: the master forks a replacement for a forked member that died unasked.

`jet-start -m N` promises N members. When one of the master's children exits without
having been asked to (killed, crashed, OOM-killed), a replacement is forked into its
slot after a backoff that doubles with each death in a row (0.5 s, 1 s, 2 s ... at most
30 s), the row being broken by a member that lived RESET_AFTER_S. A slot whose members
keep dying before they even join (a broken environment) is given up after
START_FAILURES_ALLOWED such deaths within START_FAILURE_WINDOW_S: the master stops
trying, logs why, and `jet cluster` says so. `jet-start --no-respawn` keeps Jet's
behaviour (a lost member stays lost). Pure bookkeeping: the time is passed in.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
#: A member that lived this long breaks its slot's row of deaths: the next backoff is the first.
RESET_AFTER_S = 10.0
#: Deaths before joining that make the master give a slot up, and within how long.
START_FAILURES_ALLOWED = 5
START_FAILURE_WINDOW_S = 120.0


@dataclass
class Slot:
    index: int
    restarts: int = 0  # replacements forked into it
    in_a_row: int = 0  # deaths since a member of it last lived RESET_AFTER_S
    start_failures: list[float] = field(default_factory=list)
    due: float | None = None  # when its replacement is to be forked
    gave_up: str | None = None  # why the master stopped replacing its members


class RespawnPolicy:
    def __init__(self, slots: int, enabled: bool = True):
        self.enabled = enabled
        self.slots = [Slot(index) for index in range(slots)]

    def died(self, slot: int, lived_s: float, joined: bool, now: float, how: str) -> float | None:
        """A member of ``slot`` died unasked after ``lived_s``; the backoff before its
        replacement, or None when there will be none (respawn off, or the slot given up)."""
        if not self.enabled:
            return None
        state = self.slots[slot]
        state.in_a_row = 1 if lived_s >= RESET_AFTER_S else state.in_a_row + 1
        if not joined:
            state.start_failures = [t for t in state.start_failures if now - t < START_FAILURE_WINDOW_S] + [now]
            if len(state.start_failures) >= START_FAILURES_ALLOWED:
                state.gave_up = (f"not respawned: its last {len(state.start_failures)} members died before "
                                 f"joining, within {START_FAILURE_WINDOW_S:.0f} s (the last {how}); see their logs")
                state.due = None
                log.error("member slot %d %s", slot, state.gave_up)
                return None
        backoff = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** (state.in_a_row - 1))
        state.due = now + backoff
        return backoff

    def due(self, now: float) -> list[int]:
        """Slots whose replacement is due now (each returned once)."""
        ready = [s.index for s in self.slots if s.due is not None and now >= s.due]
        for index in ready:
            self.slots[index].due = None
            self.slots[index].restarts += 1
        return ready

    def notes(self) -> tuple[str, ...]:
        """What `jet cluster` tells of slots the master gave up."""
        return tuple(f"member slot {s.index}: {s.gave_up}" for s in self.slots if s.gave_up)
