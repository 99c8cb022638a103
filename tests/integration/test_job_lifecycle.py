"""Job management from the command line and the Python API, on a real cluster.

Every row of docs/jet-compatibility.md §1 for the job commands, and the transitions
of §3 that need no snapshots: exact stdout, stderr and exit codes, and statuses after.
"""
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import jetmq
from jetmq import JobConfig, JobStatus
from jetmq.testing import wait_until
from tests.integration.dags import batch_dag, streaming_dag

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

JOBS = Path(__file__).parent / "jobs"
HINT = "To see the full stack trace, re-run with the -v/--verbosity option"
ID = r"[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}"
TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{3})?)?"
WAIT_S = 20


@pytest.fixture(scope="module")
def jet():
    with jetmq.Cluster(members=2) as cluster, pytest.MonkeyPatch.context() as patch:
        patch.setenv("JET_KEY_FILE", str(cluster.key_file))  # every CLI the tests run presents it
        yield cluster


@pytest.fixture
def cli(jet):
    """``cli(*args)``: run `jet --addresses <cluster> ...`; a CompletedProcess (text)."""

    def run(*args, timeout=60):
        return subprocess.run([sys.executable, "-m", "jetmq.cli.jet", "--addresses", jet.address, *map(str, args)],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)

    return run


@pytest.fixture(autouse=True)
def cancel_leftovers(jet):
    """Each test starts with no active job (they share one cluster)."""
    yield
    for job in jet.get_jobs():
        if not job.status.is_terminal:
            job.cancel()
    wait_until(lambda: all(j.status.is_terminal for j in jet.get_jobs()), WAIT_S, "jobs did not end")


def submit(cli, jet, *args, script="streaming_job.py"):
    """Submit a script, wait for its job to run; the Job and the CompletedProcess."""
    before = {j.id for j in jet.get_jobs()}
    result = cli("submit", *args, JOBS / script)
    assert result.returncode == 0, result.stderr
    new = [j for j in jet.get_jobs() if j.id not in before]
    assert len(new) == 1, new
    wait_until(lambda: new[0].status is JobStatus.RUNNING, WAIT_S, lambda: f"job is {new[0].status}")
    return new[0], result


def error_lines(message):
    return f"ERROR: {message}\n\n{HINT}\n"


def formatted(job):
    return f"id={job.id_string}, name={job.name}, submissionTime="


# ------------------------------------------------------------------------------- submit


def test_submit_output_is_exactly_jets(cli, jet):
    before = {j.id for j in jet.get_jobs()}
    script = JOBS / "streaming_job.py"
    result = cli("submit", "-n", "hello-world", script, "arg1", "arg2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == [f"Submitting '{script}' with arguments [arg1, arg2]", "Using job name 'hello-world'"]
    (job,) = [j for j in jet.get_jobs() if j.id not in before]
    assert job.name == "hello-world"
    wait_until(lambda: job.status is JobStatus.RUNNING, WAIT_S, "the submitted job does not run")


def test_submit_without_a_name_submits_an_unnamed_job(cli, jet):
    job, result = submit(cli, jet)
    assert result.stdout.splitlines()[0] == f"Submitting '{JOBS / 'streaming_job.py'}' with arguments []"
    assert "Using job name" not in result.stdout
    assert job.name is None


def test_submit_hands_everything_after_the_file_to_the_script_untouched(cli, jet, tmp_path, monkeypatch):
    # Given a script that records its arguments
    out = tmp_path / "args.json"
    monkeypatch.setenv("ARGS_OUT", str(out))
    # When it is submitted with arguments that look like jet's own options
    result = cli("submit", "-n", "with-args", JOBS / "args_job.py", "--input", "books/", "-n", "3", "--", "-v")
    # Then jet took its -n, and the script got every word after its file, as given
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == [
        f"Submitting '{JOBS / 'args_job.py'}' with arguments [--input, books/, -n, 3, --, -v]",
        "Using job name 'with-args'"]
    assert json.loads(out.read_text()) == ["--input", "books/", "-n", "3", "--", "-v"]
    (job,) = jet.get_jobs("with-args")
    job.join()


def test_submit_of_a_missing_file_fails_with_jets_message(cli, jet):
    before = len(jet.get_jobs())
    result = cli("submit", "no/such/script.py")
    assert result.returncode == 1
    assert result.stderr == error_lines("File no/such/script.py could not be found.")
    assert len(jet.get_jobs()) == before


@pytest.mark.parametrize("script,message", [
    ("raising_script.py", r"the script .*raising_script.py failed: RuntimeError: the script broke after submitting"),
    ("no_job_script.py", r"the script .*no_job_script.py submitted no job"),
    ("unpicklable_job.py", r"the script .*unpicklable_job.py failed: SerializationError: the job cannot be "
                           r"serialized: TypeError: cannot pickle '_thread.lock' object"),
])
def test_a_broken_script_is_an_error_and_leaves_no_job_running(cli, jet, script, message):
    before = {j.id for j in jet.get_jobs()}
    result = cli("submit", JOBS / script)
    assert result.returncode == 1
    first = result.stderr.splitlines()[0]
    assert re.fullmatch(f"ERROR: {message}", first), first
    assert result.stderr.endswith(f"\n\n{HINT}\n")
    new = [j for j in jet.get_jobs() if j.id not in before]
    assert all(j.status.is_terminal for j in new), [(j.id_string, j.status) for j in new]


def test_killing_the_submitting_client_leaves_the_job_running_and_manageable(jet, cli):
    before = {j.id for j in jet.get_jobs()}
    client = subprocess.Popen(
        [sys.executable, "-m", "jetmq.cli.jet", "--addresses", jet.address, "submit", "-n", "orphan",
         JOBS / "streaming_job.py", "join"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: [j for j in jet.get_jobs() if j.id not in before], WAIT_S, "nothing was submitted")
        (job,) = [j for j in jet.get_jobs() if j.id not in before]
        wait_until(lambda: job.status is JobStatus.RUNNING, WAIT_S, "the job does not run")
        client.send_signal(signal.SIGKILL)
        client.wait(timeout=WAIT_S)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
        client.stdout.close()
    assert job.status is JobStatus.RUNNING
    result = cli("suspend", "orphan")
    assert result.returncode == 0, result.stderr
    assert job.status is JobStatus.SUSPENDED


# ------------------------------------------------------------------------------- list-jobs


def test_list_jobs_shows_active_jobs_newest_first_and_all_with_a(cli, jet):
    named, _ = submit(cli, jet, "-n", "first job")
    unnamed, _ = submit(cli, jet)
    finished, _ = submit(cli, jet, "-n", "done job")
    assert cli("cancel", "done job").returncode == 0
    header = "%-19s %-18s %-23s %s" % ("ID", "STATUS", "SUBMISSION TIME", "NAME")

    result = cli("list-jobs")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == header
    assert lines[1].startswith("%-19s %-18s " % (unnamed.id_string, "RUNNING")) and lines[1].endswith(" N/A")
    assert lines[2].startswith("%-19s %-18s " % (named.id_string, "RUNNING")) and lines[2].endswith(" first job")
    assert all(re.fullmatch(f"{ID} RUNNING {' ' * 11}{TIME} *(N/A|first job)", line) for line in lines[1:3]), lines
    assert finished.id_string not in result.stdout

    everything = cli("list-jobs", "-a").stdout.splitlines()
    assert everything[0] == header
    ids = [line.split()[0] for line in everything[1:]]
    assert ids.index(finished.id_string) < ids.index(unnamed.id_string) < ids.index(named.id_string)
    assert any(line.startswith("%-19s %-18s " % (finished.id_string, "FAILED")) for line in everything)


# ------------------------------------------------------------------------------- cancel


def test_cancel_by_name_prints_jets_lines_and_the_job_fails(cli, jet):
    job, _ = submit(cli, jet, "-n", "to cancel")
    result = cli("cancel", "to cancel")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(f"Cancelling job id={job.id_string}, name=to cancel, submissionTime={TIME}", lines[0])
    assert lines[1:] == ["Job cancelled."]
    assert job.status is JobStatus.FAILED
    assert job.failure_text == "CancellationException"


def test_cancel_by_id_of_an_unnamed_job(cli, jet):
    job, _ = submit(cli, jet)
    result = cli("cancel", job.id_string)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(f"Cancelling job id={job.id_string}, name=null, submissionTime={TIME}",
                        result.stdout.splitlines()[0])
    assert job.status is JobStatus.FAILED


def test_cancel_of_a_finished_job_is_refused(cli, jet):
    job, _ = submit(cli, jet, "-n", "short-lived")
    cli("cancel", job.id_string)
    result = cli("cancel", job.id_string)
    assert result.returncode == 1
    assert result.stderr == error_lines(f"Job '{job.id_string}' is not active. Current state: FAILED")


def test_cancel_of_a_suspended_job_fails_it_at_once(cli, jet):
    job, _ = submit(cli, jet, "-n", "suspended then cancelled")
    assert cli("suspend", job.id_string).returncode == 0
    result = cli("cancel", job.id_string)
    assert result.returncode == 0, result.stderr
    assert job.status is JobStatus.FAILED


def test_an_unknown_job_is_named_in_the_error(cli):
    for command in ("cancel", "suspend", "resume", "restart"):
        result = cli(command, "no-such-job")
        assert result.returncode == 1
        assert result.stderr == error_lines("No job with name or id 'no-such-job' was found")


# ------------------------------------------------------------------------------- suspend / resume / restart


def test_suspend_resume_restart_print_jets_lines_and_reach_their_status(cli, jet):
    job, _ = submit(cli, jet, "-n", "lifecycle")
    prefix = f"id={job.id_string}, name=lifecycle, submissionTime={TIME}"

    result = cli("suspend", "lifecycle")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(f"Suspending job {prefix}\\.\\.\\.\nJob suspended\\.\n", result.stdout), result.stdout
    assert job.status is JobStatus.SUSPENDED

    result = cli("resume", "lifecycle")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(f"Resuming job {prefix}\\.\\.\\.\nJob resumed\\.\n", result.stdout), result.stdout
    assert job.status is JobStatus.RUNNING

    result = cli("restart", job.id_string)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(f"Restarting job {prefix}\\.\\.\\.\nJob restarted\\.\n", result.stdout), result.stdout
    assert job.status is JobStatus.RUNNING


@pytest.mark.parametrize("command,needs", [("suspend", "running"), ("restart", "running"), ("resume", "suspended")])
def test_a_command_in_the_wrong_state_gives_jets_error(cli, jet, command, needs):
    job, _ = submit(cli, jet, "-n", "wrong state")
    if needs == "running":
        assert cli("suspend", "wrong state").returncode == 0
        state = "SUSPENDED"
    else:
        state = "RUNNING"
    result = cli(command, "wrong state")
    assert result.returncode == 1
    assert result.stderr == error_lines(f"Job 'wrong state' is not {needs}. Current state: {state}")
    assert job.status.name == state


def test_a_name_with_spaces_and_unicode_works_everywhere(cli, jet):
    name = "tâche d'été ☀ 2"
    job, result = submit(cli, jet, "-n", name)
    assert f"Using job name '{name}'" in result.stdout
    assert name in cli("list-jobs").stdout
    assert cli("suspend", name).returncode == 0
    assert cli("resume", name).returncode == 0
    assert cli("cancel", name).returncode == 0
    assert job.status is JobStatus.FAILED


def test_a_name_resolves_to_the_active_job_among_jobs_of_that_name(cli, jet):
    old, _ = submit(cli, jet, "-n", "twice")
    assert cli("cancel", "twice").returncode == 0
    new, _ = submit(cli, jet, "-n", "twice")
    result = cli("suspend", "twice")
    assert result.returncode == 0, result.stderr
    assert new.id_string in result.stdout
    assert new.status is JobStatus.SUSPENDED and old.status is JobStatus.FAILED


# ------------------------------------------------------------------------------- the Python API


def test_a_second_active_job_of_a_name_is_refused_and_if_absent_returns_the_first(jet):
    first = jet.new_job(streaming_dag(), JobConfig(name="unique"))
    with pytest.raises(jetmq.JobAlreadyExistsError, match="unique"):
        jet.new_job(streaming_dag(), JobConfig(name="unique"))
    assert jet.new_job_if_absent(streaming_dag(), JobConfig(name="unique")).id == first.id
    first.cancel()


def test_join_raises_cancellation_error_for_a_cancelled_job(jet):
    job = jet.new_job(streaming_dag())
    wait_until(lambda: job.status is JobStatus.RUNNING, WAIT_S, "not running")
    job.cancel()
    with pytest.raises(jetmq.CancellationError):
        job.join(timeout=WAIT_S)


def test_join_keeps_waiting_while_the_job_is_suspended(jet):
    job = jet.new_job(streaming_dag())
    wait_until(lambda: job.status is JobStatus.RUNNING, WAIT_S, "not running")
    job.suspend()
    wait_until(lambda: job.status is JobStatus.SUSPENDED, WAIT_S, "not suspended")
    with pytest.raises(jetmq.JobTimeoutError, match="SUSPENDED"):
        job.join(timeout=0.5)
    job.cancel()
    with pytest.raises(jetmq.CancellationError):
        job.join(timeout=WAIT_S)


def test_a_termination_while_another_is_pending_is_refused(jet):
    job = jet.new_job(streaming_dag(close_delay_s=2.0))
    wait_until(lambda: job.status is JobStatus.RUNNING, WAIT_S, "not running")
    job.suspend()
    assert job.status is JobStatus.COMPLETING
    with pytest.raises(jetmq.IllegalJobStateError,
                       match="Cannot RESTART_GRACEFUL: Job is already terminating in mode: SUSPEND_GRACEFUL"):
        job.restart()
    wait_until(lambda: job.status is JobStatus.SUSPENDED, WAIT_S, "not suspended")
    job.cancel()


def test_suspend_of_a_job_that_is_not_running_raises_jets_error(jet):
    job = jet.new_job(streaming_dag())
    wait_until(lambda: job.status is JobStatus.RUNNING, WAIT_S, "not running")
    job.suspend()
    wait_until(lambda: job.status is JobStatus.SUSPENDED, WAIT_S, "not suspended")
    with pytest.raises(jetmq.IllegalJobStateError, match="Cannot SUSPEND_GRACEFUL, job status is SUSPENDED, "
                                                         "should be RUNNING"):
        job.suspend()
    job.resume()  # resuming a suspended job; resuming again is a no-op
    job.resume()
    wait_until(lambda: job.status is JobStatus.RUNNING, WAIT_S, "not resumed")
    job.cancel()


def test_join_returns_on_completion_and_get_jobs_orders_active_first(jet):
    running = jet.new_job(streaming_dag(), JobConfig(name="ordering"))
    done = jet.new_job(batch_dag(), JobConfig(name="ordering-done"))
    done.join(timeout=WAIT_S)
    assert done.status is JobStatus.COMPLETED
    statuses = [j.status.is_terminal for j in jet.get_jobs()]
    assert statuses == sorted(statuses), "active jobs must come first"
    assert jet.get_job("ordering").id == running.id
    running.cancel()


# ------------------------------------------------------------------------------- named snapshots


def test_save_list_and_delete_snapshot_print_jets_lines(cli, jet):
    job, _ = submit(cli, jet, "-n", "a job with a rather long name for the table")
    result = cli("save-snapshot", "a job with a rather long name for the table", "snap-one")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(f"Saving snapshot with name 'snap-one' from job '{formatted(job)}{TIME}'...\n"
                        f"Exported snapshot 'snap-one'.\n", result.stdout), result.stdout
    assert job.status is JobStatus.RUNNING

    header = "%-23s %-15s %-24s %s" % ("TIME", "SIZE (bytes)", "JOB NAME", "SNAPSHOT NAME")
    lines = cli("list-snapshots").stdout.splitlines()
    assert lines[0] == header
    (row,) = [line for line in lines[1:] if line.endswith(" snap-one")]
    assert re.fullmatch(f"{TIME} *[0-9,]+ +a job with a rather lon\\* snap-one", row), row  # 23 characters and a star
    full = [line for line in cli("list-snapshots", "-F").stdout.splitlines() if line.endswith(" snap-one")]
    assert "a job with a rather long name for the table snap-one" in full[0]

    result = cli("delete-snapshot", "snap-one")
    assert (result.returncode, result.stdout) == (0, "Deleted snapshot 'snap-one'.\n")
    result = cli("delete-snapshot", "snap-one")
    assert result.returncode == 1
    assert result.stderr == error_lines("Didn't find a snapshot named 'snap-one'")
    assert cli("list-snapshots").stdout.splitlines() == [header]


def test_save_snapshot_with_cancel_exports_then_cancels(cli, jet):
    job, _ = submit(cli, jet, "-n", "export and cancel")
    result = cli("save-snapshot", "-C", "export and cancel", "last-words")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(f"Saving snapshot with name 'last-words' from job '{formatted(job)}{TIME}' and cancelling "
                        f"the job...\nExported snapshot 'last-words'.\n", result.stdout), result.stdout
    assert job.status is JobStatus.FAILED  # the command waited for the cancellation
    assert jet.get_job_state_snapshot("last-words").job_name == "export and cancel"
    result = cli("save-snapshot", "export and cancel", "too-late")
    assert result.returncode == 1
    assert result.stderr == error_lines("Job 'export and cancel' is not active. Current state: FAILED")
    assert cli("delete-snapshot", "last-words").returncode == 0


def test_cancel_of_a_finished_job_through_the_api_is_ignored(jet):
    job = jet.new_job(batch_dag())
    job.join(timeout=WAIT_S)
    job.cancel()
    assert job.status is JobStatus.COMPLETED
