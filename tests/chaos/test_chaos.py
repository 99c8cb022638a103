"""Members killed and paused while an exactly-once job runs: nothing lost, nothing duplicated."""
import pytest

from jetmq.cli.chaos import run_chaos

pytestmark = pytest.mark.integration


@pytest.mark.timeout(120)
def test_a_bounded_chaos_run_loses_and_duplicates_nothing(tmp_path):
    report = run_chaos(seconds=40, interval=3.0, members=3, rate=3000, keys=20, pause_probability=0.15, seed=7,
                       data_dir=tmp_path / "data", log=lambda line: None)
    print("\n".join(report.lines()))
    assert report.kills >= 5, report.lines()
    assert report.restarts >= report.kills, "every kill must have restarted the job"
    assert report.verdict.items > 10_000, report.lines()
    assert report.verdict.lost == 0 and report.verdict.duplicated == 0, report.lines()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_long_chaos_run_loses_and_duplicates_nothing(tmp_path):
    report = run_chaos(seconds=600, interval=4.0, members=3, rate=5000, keys=50, pause_probability=0.2, seed=11,
                       data_dir=tmp_path / "data", log=lambda line: None)
    print("\n".join(report.lines()))
    assert report.verdict.exactly_once, report.lines()
