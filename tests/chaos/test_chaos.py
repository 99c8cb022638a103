"""Members killed and paused while an exactly-once job runs: nothing lost, nothing duplicated,
and the master answers its clients throughout."""
import pytest

from jetmq.cli.chaos import run_chaos

pytestmark = pytest.mark.integration

#: The slowest answer the master may give a client during chaos.
MAX_ANSWER_S = 2.0


@pytest.mark.timeout(120)
def test_a_bounded_chaos_run_loses_and_duplicates_nothing(tmp_path):
    report = run_chaos(seconds=40, interval=3.0, members=3, rate=3000, keys=20, pause_probability=0.15, seed=7,
                       data_dir=tmp_path / "data", log=lambda line: None)
    print("\n".join(report.lines()))
    assert report.kills >= 5, report.lines()
    assert report.restarts >= 1, "the kills must have restarted the job"
    assert report.verdict.items > 10_000, report.lines()
    assert report.verdict.lost == 0 and report.verdict.duplicated == 0, report.lines()
    assert report.max_members <= 3, f"the runner let the cluster grow: {report.lines()}"
    assert report.final_members == 3, report.lines()  # the pool healed by respawn alone
    assert report.slowest_answer_s <= MAX_ANSWER_S, report.lines()


@pytest.mark.timeout(150)
def test_an_overloaded_cluster_under_faults_stays_exactly_once_and_answers_in_time(tmp_path):
    # six members on two cores, a fault every 2 to 4 s: more work than the machine can do
    report = run_chaos(seconds=45, interval=3.0, members=6, rate=3000, keys=20, pause_probability=0.25, seed=3,
                       data_dir=tmp_path / "data", log=lambda line: None)
    print("\n".join(report.lines()))
    assert report.kills + report.pauses >= 8, report.lines()
    assert report.verdict.items > 5_000 and report.verdict.exactly_once, report.lines()
    assert report.max_members <= 6, report.lines()
    assert report.slowest_answer_s <= MAX_ANSWER_S, report.lines()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_long_chaos_run_loses_and_duplicates_nothing(tmp_path):
    report = run_chaos(seconds=600, interval=4.0, members=3, rate=5000, keys=50, pause_probability=0.2, seed=11,
                       data_dir=tmp_path / "data", log=lambda line: None)
    print("\n".join(report.lines()))
    assert report.verdict.exactly_once, report.lines()
    assert report.max_members <= 3, report.lines()
    assert report.slowest_answer_s <= MAX_ANSWER_S, report.lines()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_long_overloaded_chaos_run_stays_exactly_once_and_answers_in_time(tmp_path):
    report = run_chaos(seconds=600, interval=3.0, members=6, rate=5000, keys=50, pause_probability=0.25, seed=13,
                       data_dir=tmp_path / "data", log=lambda line: None)
    print("\n".join(report.lines()))
    assert report.verdict.exactly_once, report.lines()
    assert report.max_members <= 6, report.lines()
    assert report.slowest_answer_s <= MAX_ANSWER_S, report.lines()
