"""`jet logs` on a real 2-member cluster: what user code printed and logged on every member,
in time order, tagged with the job and the member; --tail, --member, -f; the member logs
tag every line about a job with its id, and keep each job's lines in a file of their own."""
from __future__ import annotations

import logging
import queue
import re
import subprocess
import sys
import threading
from dataclasses import dataclass

import psutil
import pytest

from jetmq import JobConfig, JobStatus
from jetmq.pipeline import Pipeline, Sinks, Sources
from jetmq.testing import wait_until
from tests.integration.dags import failing_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

WAIT_S = 30
ITEMS = 40
LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}) job=(\S+) member=([0-9a-f]{8}) (.*)$")


def shout(x):
    """The user function: prints one marker and logs another per item."""
    print(f"print-marker {x}")
    logging.getLogger("userfn").info("log-marker %d", x)
    return x


def identity(x):
    return x


def sequence_of(_timestamp_ms, sequence):
    return sequence


def shout_stream(x):
    print(f"stream-marker {x}")
    return x


@dataclass(frozen=True)
class Line:
    time: str
    job: str
    member: str
    text: str


def jet(cluster, *args) -> subprocess.CompletedProcess:
    return subprocess.run(jet_command(cluster, *args), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)


def jet_command(cluster, *args) -> list[str]:
    return [sys.executable, "-m", "jetmq.cli.jet", "--addresses", cluster.address, "--key-file",
            str(cluster.key_file), *args]


def parsed(stdout: str) -> list[Line]:
    lines = []
    for text in stdout.splitlines():
        match = LINE.match(text)
        assert match, f"not a line of jet logs: {text!r}"
        lines.append(Line(*match.groups()))
    return lines


def markers(lines: list[Line], kind: str) -> list[int]:
    return [int(line.text.rsplit(" ", 1)[1]) for line in lines if f": {kind}-marker " in line.text]


@pytest.fixture
def shouted(cluster):
    """A batch job whose map (after a rebalance by key: items on both members) printed and
    logged a marker per item, completed."""
    p = Pipeline()
    p.read_from(Sources.items(range(ITEMS))).rebalance(identity).map(shout).write_to(Sinks.list("shouted"))
    job = cluster.new_job(p, JobConfig(name="shouting"))
    job.join()
    return job


def test_jet_logs_shows_what_user_code_printed_and_logged_on_every_member(cluster, shouted):
    members = {m.uuid[:8]: m for m in cluster.cluster().members}
    # When the job's logs are asked for by its name
    result = jet(cluster, "logs", "shouting")
    # Then every item's two markers are there once, tagged with the job and the member that ran it
    assert result.returncode == 0, result.stderr
    lines = parsed(result.stdout)
    assert {line.job for line in lines} == {shouted.id_string}
    assert sorted(markers(lines, "print")) == list(range(ITEMS))
    assert sorted(markers(lines, "log")) == list(range(ITEMS))
    printed = [line for line in lines if ": print-marker " in line.text]
    assert all(line.text.startswith("INFO stdout: print-marker ") for line in printed)
    assert all(line.text.startswith("INFO userfn: log-marker ") for line in lines if ": log-marker " in line.text)
    # from both members, in time order
    assert {line.member for line in printed} == set(members)
    assert [line.time for line in lines] == sorted(line.time for line in lines)
    # And the engine's own line about each member's execution of the job is among them
    initialising = [line for line in lines if "jetmq.member.joblogs: execution" in line.text]
    assert {line.member for line in initialising} == set(members)
    # And each member's log tags its lines about the job with the job's id, and no other line
    for uuid8 in members:
        member_log = (cluster.data_dir / "logs" / f"member-{uuid8}.log").read_text().splitlines()
        mine = [line for line in printed if line.member == uuid8]
        tagged = [line for line in member_log if f"job={shouted.id_string} " in line]
        assert [line for line in tagged if "stdout: print-marker" in line] == [
            line for line in member_log if "print-marker" in line]
        assert len([line for line in tagged if "stdout: print-marker" in line]) == len(mine)
        assert any(f"job={shouted.id_string} jetmq.member.joblogs: execution" in line for line in tagged)
        # a line about no job: in the member log, untagged, and not in the job's logs
        joined = [line for line in member_log if "joined the cluster" in line]
        assert joined and all("job=" not in line for line in joined)
        assert not any("joined the cluster" in line.text for line in lines)
        # And the member keeps the job's lines in a file of their own
        job_file = cluster.data_dir / "logs" / "jobs" / shouted.id_string / f"member-{uuid8}.log"
        assert job_file.read_text().splitlines() == tagged


def test_tail_and_member_select_lines_and_bad_ones_are_errors(cluster, shouted):
    full = parsed(jet(cluster, "logs", shouted.id_string).stdout)
    assert len(full) >= 2 * ITEMS
    # --tail N: exactly the last N lines
    result = jet(cluster, "logs", "--tail", "5", "shouting")
    assert result.returncode == 0, result.stderr
    assert parsed(result.stdout) == full[-5:]
    assert jet(cluster, "logs", "--tail", "0", "shouting").stdout == ""
    # --member: that member's lines only, by a prefix of its uuid or all of it
    uuid = cluster.cluster().members[0].uuid
    for given in (uuid[:8], uuid):
        result = jet(cluster, "logs", "--member", given, "shouting")
        assert result.returncode == 0, result.stderr
        assert parsed(result.stdout) == [line for line in full if line.member == uuid[:8]]
    assert parsed(jet(cluster, "logs", "--member", uuid[:6], "--tail", "3", "shouting").stdout) == [
        line for line in full if line.member == uuid[:8]][-3:]
    # And what names nothing is an error
    for args, message in [(["--member", "not-hex", "shouting"], "is not a member uuid"),
                          (["--member", "0000000000", "shouting"], "No member with uuid '0000000000'"),
                          (["--tail", "many", "shouting"], "--tail takes a number of lines"),
                          (["no-such-job"], "No job with name or id 'no-such-job' was found")]:
        result = jet(cluster, "logs", *args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert result.stderr.startswith("ERROR: ") and message in result.stderr, result.stderr
        assert result.stdout == ""


def test_follow_streams_new_lines_and_ends_when_the_job_ends(cluster, processes):
    # Given a streaming job whose map prints a marker per item
    p = Pipeline()
    (p.read_from(Sources.item_stream(20, sequence_of)).without_timestamps()
     .map(shout_stream).write_to(Sinks.noop()))
    job = cluster.new_job(p, JobConfig(name="streaming"))
    # When its logs are followed
    follower = processes.popen(jet_command(cluster, "logs", "-f", "streaming"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    shown: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [shown.put(line) for line in follower.stdout], daemon=True)
    reader.start()
    seen: list[str] = []

    def streamed(count: int) -> bool:
        while not shown.empty():
            seen.append(shown.get())
        return len(markers(parsed("".join(seen)), "stream")) >= count

    # Then new lines keep coming while the job runs
    wait_until(lambda: streamed(10), WAIT_S, lambda: f"jet logs -f showed {seen!r}")
    assert follower.poll() is None and job.status is JobStatus.RUNNING
    wait_until(lambda: streamed(20), WAIT_S, lambda: f"jet logs -f showed {seen!r}")
    # And once the job is cancelled, it ends by itself, having shown every line once
    job.cancel()
    follower.wait(timeout=WAIT_S)
    reader.join(WAIT_S)
    streamed(0)
    assert follower.returncode == 0, follower.stderr.read()
    followed = markers(parsed("".join(seen)), "stream")
    assert followed == sorted(set(followed)) == list(range(len(followed)))
    assert followed == markers(parsed(jet(cluster, "logs", "streaming").stdout), "stream")


def test_lines_of_a_member_that_died_are_still_shown(cluster, shouted):
    # Given the logs of a completed job that ran on both members
    before = parsed(jet(cluster, "logs", "shouting").stdout)
    dead = cluster.cluster().members[0]
    assert any(line.member == dead.uuid[:8] for line in before)
    # When one of the members is killed, and the cluster has seen it go
    psutil.Process(dead.pid).kill()
    wait_until(lambda: cluster.cluster().size == 1, WAIT_S, "the killed member is still listed")
    # Then the job's logs are what they were, and its lines can still be asked for by its uuid
    assert parsed(jet(cluster, "logs", "shouting").stdout) == before
    result = jet(cluster, "logs", "--member", dead.uuid[:8], "shouting")
    assert result.returncode == 0, result.stderr
    assert parsed(result.stdout) == [line for line in before if line.member == dead.uuid[:8]]


def test_the_failure_of_a_job_and_its_traceback_are_in_its_logs(cluster):
    # Given a job whose map raised
    job = cluster.new_job(failing_pipeline(), JobConfig(name="bad-map"))
    wait_until(lambda: job.status is JobStatus.FAILED, WAIT_S, lambda: f"the job is {job.status}")
    # When its logs are shown
    result = jet(cluster, "logs", "bad-map")
    assert result.returncode == 0, result.stderr
    texts = [line.text for line in parsed(result.stdout)]
    # Then the engine's report of the failure is there, each line of its traceback tagged
    report = re.compile(r"ERROR \S+: ProcessorTasklet\{.*map.*\} failed:$")
    failed = next(i for i, text in enumerate(texts) if report.match(text))
    assert texts[failed + 1] == "Traceback (most recent call last):"
    assert "ValueError: bad item 7" in texts[failed + 1:]
    assert any(re.match(r"WARNING jetmq.member.executions: execution [0-9a-f]{4}(-[0-9a-f]{4}){3} failed: .*bad item 7", text) for text in texts)
