"""`jet logs` against a stand-in master: its command line, its output, and that it loads what
`jet list-jobs` loads and no more (tests/unit/test_cli_imports.py)."""
from __future__ import annotations

import time

import pytest

from jetmq import protocol as p
from jetmq.cli.common import parse_args
from jetmq.cli.jet import __doc__ as JET_USAGE
from tests.unit.test_cli_imports import NOT_FOR_LIST_JOBS, StandInMaster, loaded, run_jet

pytestmark = pytest.mark.timeout(60)

MEMBER = "74e5fc5c-07d5-47e1-872c-be2b65afa8f0"
TIME_MS = 1_700_000_000_123


def local(epoch_ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(epoch_ms / 1000)) + f".{epoch_ms % 1000:03d}"


@pytest.mark.parametrize("argv,follow,member,tail", [
    (["logs", "job"], False, None, None),
    (["logs", "-f", "--member", "74e5", "--tail", "10", "job"], True, "74e5", "10"),
    (["logs", "--follow", "job"], True, None, None),
])
def test_the_command_line_of_jet_logs(argv, follow, member, tail):
    args = parse_args(JET_USAGE, argv)
    assert args["logs"] and args["<job>"] == "job"
    assert (args["--follow"], args["--member"], args["--tail"]) == (follow, member, tail)


def test_jet_logs_shows_tagged_lines_and_loads_no_serialization_nor_engine():
    replies = {**StandInMaster.REPLIES, p.GetJobLogs: p.JobLogsReply(
        (p.KeptLogLine(0, TIME_MS, MEMBER, "INFO stdout: hello"),
         p.KeptLogLine(1, TIME_MS + 5, MEMBER, "WARNING userfn: two\nlines")),
        1, False, 0, "COMPLETED", None)}
    with StandInMaster(replies) as master:
        result, modules = run_jet("--addresses", master.address, "--key-file", "none", "logs", "-f", "stand-in")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{local(TIME_MS)} job=1062-596f-4740-108d member=74e5fc5c INFO stdout: hello",
        f"{local(TIME_MS + 5)} job=1062-596f-4740-108d member=74e5fc5c WARNING userfn: two", "lines"]
    assert "jetmq.requester" in modules and "zmq" in modules
    assert loaded(modules, NOT_FOR_LIST_JOBS) == []


def test_lines_the_master_no_longer_keeps_are_said_on_stderr():
    replies = {**StandInMaster.REPLIES, p.GetJobLogs: p.JobLogsReply(
        (p.KeptLogLine(7, TIME_MS, MEMBER, "INFO stdout: late"),), 7, False, 7, "RUNNING", None)}
    with StandInMaster(replies) as master:
        result, _ = run_jet("--addresses", master.address, "--key-file", "none", "logs", "stand-in")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("member=74e5fc5c INFO stdout: late\n")
    assert ("(7 earlier lines of this job are no longer kept by the master; every member keeps all of its lines "
            "in jobs/1062-596f-4740-108d/ beside its log)") in result.stderr
