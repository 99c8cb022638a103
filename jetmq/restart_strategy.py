"""Restart strategies: what a job does when its own code fails (as Flink's).

A job whose user code raises (or whose processor fails) is FAILED at once under
``RestartStrategy.none()``, the default, as in Jet 4.0. Otherwise its failures are
counted and it starts again after a delay, from its last snapshot when it has a
processing guarantee, until the strategy says no more:

- ``fixed_delay(attempts, delay_ms)``: at most ``attempts`` restarts, each after ``delay_ms``;
- ``failure_rate(max_failures, interval_ms, delay_ms)``: restarts while at most
  ``max_failures`` failures fall within any ``interval_ms``;
- ``exponential_delay(initial_ms, max_ms, multiplier, reset_after_ms)``: restarts for
  ever, the delay multiplied by ``multiplier`` after each failure up to ``max_ms``, and
  back to ``initial_ms`` after ``reset_after_ms`` without a failure.

Topology changes (members joining or leaving) are not failures: auto-scaling handles
them. With ``JobConfig(suspend_on_failure=True)``, a failure the strategy will not
restart suspends the job instead, its failure kept; a fix of the data or the
environment, then ``jet resume``, goes on from its last snapshot.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

KINDS = ("none", "fixed_delay", "failure_rate", "exponential_delay")


@dataclass(frozen=True)
class RestartStrategy:
    kind: str = "none"
    attempts: int = 0
    delay_ms: int = 0
    max_failures: int = 0
    interval_ms: int = 0
    initial_ms: int = 0
    max_ms: int = 0
    multiplier: float = 2.0
    reset_after_ms: int = 0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"a restart strategy is one of {', '.join(KINDS)}, not {self.kind!r}")
        for name in ("attempts", "delay_ms", "max_failures", "interval_ms", "initial_ms", "max_ms",
                     "reset_after_ms"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ValueError(f"RestartStrategy.{self.kind}: {name} must be an int >= 0, not {value!r}")
        if not isinstance(self.multiplier, (int, float)) or self.multiplier < 1:
            raise ValueError(f"RestartStrategy.{self.kind}: multiplier must be >= 1, not {self.multiplier!r}")

    @staticmethod
    def none() -> "RestartStrategy":
        return RestartStrategy()

    @staticmethod
    def fixed_delay(attempts: int, delay_ms: int) -> "RestartStrategy":
        return RestartStrategy("fixed_delay", attempts=attempts, delay_ms=delay_ms)

    @staticmethod
    def failure_rate(max_failures: int, interval_ms: int, delay_ms: int) -> "RestartStrategy":
        return RestartStrategy("failure_rate", max_failures=max_failures, interval_ms=interval_ms,
                               delay_ms=delay_ms)

    @staticmethod
    def exponential_delay(initial_ms: int, max_ms: int, multiplier: float = 2.0,
                          reset_after_ms: int = 60_000) -> "RestartStrategy":
        return RestartStrategy("exponential_delay", initial_ms=initial_ms, max_ms=max_ms,
                               multiplier=float(multiplier), reset_after_ms=reset_after_ms)

    def delay_after(self, failure_times_ms: list[int]) -> int | None:
        """The delay before the next execution, given the times of every failure so far
        (the last is the one just now); None when the job is not to restart."""
        now = failure_times_ms[-1]
        if self.kind == "fixed_delay":
            return self.delay_ms if len(failure_times_ms) <= self.attempts else None
        if self.kind == "failure_rate":
            recent = [t for t in failure_times_ms if now - t < self.interval_ms]
            return self.delay_ms if len(recent) <= self.max_failures else None
        if self.kind == "exponential_delay":
            in_a_row = 1
            for earlier, later in zip(reversed(failure_times_ms[:-1]), reversed(failure_times_ms[1:])):
                if later - earlier >= self.reset_after_ms:
                    break
                in_a_row += 1
            return int(min(self.max_ms, self.initial_ms * self.multiplier ** (in_a_row - 1)))
        return None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RestartStrategy":
        if not isinstance(d, dict):
            raise TypeError(f"a restart strategy must be given as a dict, not {type(d).__name__}")
        return cls(**d)

    def __str__(self) -> str:
        if self.kind == "fixed_delay":
            return f"fixed_delay({self.attempts}, {self.delay_ms})"
        if self.kind == "failure_rate":
            return f"failure_rate({self.max_failures}, {self.interval_ms}, {self.delay_ms})"
        if self.kind == "exponential_delay":
            return f"exponential_delay({self.initial_ms}, {self.max_ms}, {self.multiplier}, {self.reset_after_ms})"
        return "none()"
