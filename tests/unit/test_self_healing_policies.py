"""The decisions of a self-healing cluster, on a fake clock: respawn backoff and restart strategies."""
import pytest

from jetmq.config import JobConfig
from jetmq.master.respawn import MAX_BACKOFF_S, RESET_AFTER_S, START_FAILURES_ALLOWED, RespawnPolicy
from jetmq.restart_strategy import RestartStrategy


def test_a_slot_whose_members_keep_dying_waits_twice_as_long_each_time_up_to_the_cap():
    policy = RespawnPolicy(slots=2)
    backoffs = [policy.died(0, lived_s=1.0, joined=True, now=t, how="killed") for t in range(12)]
    assert backoffs[:5] == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert max(backoffs) == MAX_BACKOFF_S
    # a member that lived a while breaks the row
    assert policy.died(0, lived_s=RESET_AFTER_S, joined=True, now=100, how="killed") == 0.5
    # and the other slot has its own row
    assert policy.died(1, lived_s=1.0, joined=True, now=100, how="killed") == 0.5


def test_a_replacement_is_due_after_its_backoff_and_counted_as_a_restart():
    policy = RespawnPolicy(slots=1)
    policy.died(0, lived_s=30, joined=True, now=10.0, how="killed by SIGKILL")
    assert policy.due(10.2) == []
    assert policy.due(10.5) == [0]
    assert policy.due(11.0) == []  # once
    assert policy.slots[0].restarts == 1


def test_a_slot_whose_members_die_before_joining_is_given_up_with_the_reason():
    policy = RespawnPolicy(slots=1)
    results = [policy.died(0, lived_s=0.3, joined=False, now=float(t), how="exited with code 1")
               for t in range(START_FAILURES_ALLOWED)]
    assert results[-1] is None and all(r is not None for r in results[:-1])
    (note,) = policy.notes()
    assert note.startswith("member slot 0: not respawned") and "exited with code 1" in note
    assert policy.due(1000.0) == []


def test_without_respawn_nothing_is_replaced():
    policy = RespawnPolicy(slots=1, enabled=False)
    assert policy.died(0, 60, True, 1.0, "killed") is None and policy.due(100.0) == []


def test_fixed_delay_restarts_a_number_of_times():
    strategy = RestartStrategy.fixed_delay(attempts=2, delay_ms=100)
    assert strategy.delay_after([1000]) == 100
    assert strategy.delay_after([1000, 2000]) == 100
    assert strategy.delay_after([1000, 2000, 3000]) is None


def test_failure_rate_restarts_while_few_failures_fall_in_the_interval():
    strategy = RestartStrategy.failure_rate(max_failures=2, interval_ms=10_000, delay_ms=50)
    assert strategy.delay_after([0, 1000]) == 50
    assert strategy.delay_after([0, 1000, 2000]) is None
    assert strategy.delay_after([0, 1000, 20_000]) == 50  # the early ones are out of the interval


def test_exponential_delay_grows_and_resets_after_a_quiet_while():
    strategy = RestartStrategy.exponential_delay(initial_ms=100, max_ms=1000, multiplier=3, reset_after_ms=5000)
    assert [strategy.delay_after([0, 10, 20, 30][:n]) for n in range(1, 5)] == [100, 300, 900, 1000]
    assert strategy.delay_after([0, 10, 10_000]) == 100


def test_none_fails_at_once_and_is_jets_default():
    assert JobConfig().restart_strategy == RestartStrategy.none()
    assert RestartStrategy.none().delay_after([0]) is None


def test_a_strategy_travels_in_the_job_config_and_is_checked():
    config = JobConfig(restart_strategy=RestartStrategy.fixed_delay(3, 100), suspend_on_failure=True)
    assert JobConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError):
        RestartStrategy.fixed_delay(-1, 100)
    with pytest.raises(ValueError):
        JobConfig.from_dict({"restart_strategy": {"kind": "sometimes"}})
