"""`jet` imports only what a command needs: what each command loads, not how long it takes.

Each test runs jetmq.cli.jet as ``python -m`` does (the module bin/jet and the console script
run) and reads the names in ``sys.modules`` as it exits: ``-X importtime`` would miss what
``importlib.import_module`` loads, as the command handlers and the message modules are.
``list-jobs``, ``describe``, ``list-snapshots`` and ``cluster`` talk to a stand-in master in this process:
a ROUTER socket without a key that answers their requests, so no cluster is started.
"""
from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading

import pytest

from jetmq import protocol as p
from jetmq.version import __version__
from jetmq.cli.jet import COMMANDS, handler_of
from jetmq.transport import Poller, RouterSocket

pytestmark = pytest.mark.timeout(60)

#: What `jet --version` and `jet --help` never load: sockets, the protocol, clients, the engine.
NOT_FOR_VERSION = ("zmq", "cloudpickle", "psutil", "lz4", "jetmq.protocol", "jetmq.transport", "jetmq.requester",
                   "jetmq.config", "jetmq.client", "jetmq.core", "jetmq.pipeline", "jetmq.serialization")
#: What `jet list-jobs` never loads: it sends one bare request, through no JetClient.
NOT_FOR_LIST_JOBS = ("cloudpickle", "lz4", "jetmq.client", "jetmq.job", "jetmq.observable", "jetmq.serialization",
                     "jetmq.core", "jetmq.pipeline", "jetmq.bootstrap", "jetmq.embedded", "asyncio")
#: The message modules `jet list-jobs` never loads: it exchanges GetJobs, JobsReply and maybe ErrorReply.
MESSAGES_NOT_FOR_LIST_JOBS = tuple(f"jetmq.protocol.{module}" for module in (
    "cluster", "snapshots", "descriptions", "structures", "executions", "logs", "waits"))
#: What `jet describe` never loads; it decodes the job's metrics reports when there are some, which
#: loads lz4 and jetmq.core (the metrics modules, and the package's DAG and processor classes).
NOT_FOR_DESCRIBE = tuple(name for name in NOT_FOR_LIST_JOBS if name not in ("lz4", "jetmq.core")) + (
    "jetmq.member", "jetmq.master")


#: ``python -m jetmq.cli.jet``, which prints the names of the loaded modules to stderr at exit.
RUN_JET = """if True:
    import atexit, runpy, sys
    atexit.register(lambda: print("MODULES", *sys.modules, file=sys.stderr))
    runpy.run_module("jetmq.cli.jet", run_name="__main__", alter_sys=True)
"""


def run_jet(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """The finished ``jet *args`` and the names of the modules it imported."""
    result = subprocess.run([sys.executable, "-c", RUN_JET, *args],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    modules = {name for line in result.stderr.splitlines() if line.startswith("MODULES ") for name in line.split()[1:]}
    assert "jetmq.cli.common" in modules, result.stderr
    return result, modules


def loaded(modules: set[str], packages) -> list[str]:
    """The names among ``packages`` that ``modules`` holds, or a module of."""
    return [name for name in packages if any(m == name or m.startswith(name + ".") for m in modules)]


@pytest.mark.parametrize("option", ["--version", "--help"])
def test_version_and_help_load_no_client_machinery(option):
    result, modules = run_jet(option)
    assert result.returncode == 0, result.stderr
    assert (f"jetmq {__version__}" == result.stdout.strip()) if option == "--version" else ("Usage:" in result.stdout)
    assert loaded(modules, NOT_FOR_VERSION) == []


def test_a_usage_error_loads_no_client_machinery():
    result, modules = run_jet("list-jobs", "--no-such-option")
    assert result.returncode == 2
    assert loaded(modules, NOT_FOR_VERSION) == []


class StandInMaster:
    """A ROUTER on a free port answering what the reading commands ask, on a thread of its own."""

    SUMMARY = p.JobSummary(job_id=0x1062_596F_4740_108D, name="stand-in", status="RUNNING",
                           submission_time=1_700_000_000_000, completion_time=None, failure_text=None,
                           executions_started=1, execution_members=(), last_snapshot_id=-1,
                           snapshot_in_progress=-1, failures=())

    REPLIES = {
        p.GetJobs: p.JobsReply((SUMMARY,)),
        p.DescribeJob: p.JobDescription(SUMMARY, {"processing_guarantee": "NONE"}, None, None, None, (), (), 500,
                                        p.pack_serialized([])),
        p.GetSnapshots: p.SnapshotsReply((p.SnapshotSummary("a-snapshot", 1_700_000_000_000, 1234,
                                                            SUMMARY.job_id, SUMMARY.name),)),
        p.ClusterRequest: p.ClusterReply(state="ACTIVE", version=__version__, cluster_name="jet", master_pid=1,
                                         master_host="stand-in", membership_version=1, members=(), stalled_ms=(),
                                         restarts=(), notes=()),
    }

    def __init__(self, replies: dict | None = None):
        self.replies = self.REPLIES if replies is None else replies
        self.router = RouterSocket("tcp://127.0.0.1:0")
        self.address = self.router.endpoint.removeprefix("tcp://")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        poller = Poller()
        poller.register(self.router)
        while not self._stop.is_set():
            if poller.poll(0.05):
                while (incoming := self.router.recv()) is not None:
                    reply = self.replies.get(type(incoming.msg))
                    if reply is not None:
                        self.router.send(incoming.peer, reply, incoming.corr)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        self.router.socket.close(linger=0)


def test_list_jobs_loads_no_serialization_nor_engine():
    with StandInMaster() as master:
        result, modules = run_jet("--addresses", master.address, "--key-file", "none", "list-jobs")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "SUBMISSION", "TIME", "NAME"]
    assert lines[1].startswith("1062-596f-4740-108d RUNNING") and lines[1].endswith(" stand-in")
    assert "jetmq.requester" in modules and "zmq" in modules  # the request really went out
    assert loaded(modules, NOT_FOR_LIST_JOBS) == []
    assert "jetmq.protocol.jobs" in modules and loaded(modules, MESSAGES_NOT_FOR_LIST_JOBS) == []


@pytest.mark.parametrize("command,expected", [("list-snapshots", "a-snapshot"), ("cluster", "State: ACTIVE"),
                                              ("list-jobs --json", '"name": "stand-in"'),
                                              ("cluster --json", '"state": "ACTIVE"')])
def test_the_other_reading_commands_load_no_serialization_nor_engine(command, expected):
    with StandInMaster() as master:
        result, modules = run_jet("--addresses", master.address, "--key-file", "none", *command.split())
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
    assert loaded(modules, NOT_FOR_LIST_JOBS) == []


@pytest.mark.parametrize("json_option", [[], ["--json"]])
def test_describe_without_metrics_loads_what_list_jobs_loads(json_option):
    with StandInMaster() as master:
        result, modules = run_jet("--addresses", master.address, "--key-file", "none", "describe", *json_option,
                                  "stand-in")
    assert result.returncode == 0, result.stderr
    assert "1062-596f-4740-108d" in result.stdout and "RUNNING" in result.stdout
    assert loaded(modules, NOT_FOR_LIST_JOBS) == []


def test_describe_with_metrics_loads_no_client_serialization_nor_engine():
    from jetmq.core.metrics_context import encode_report

    report = encode_report(1_700_000_000_000, {"member": "m", "job": "j", "exec": "e"},
                           [[{"vertex": "v", "proc": "0", "source": "true"}, [["emittedCount", "count", 5, None]]]])
    description = StandInMaster.REPLIES[p.DescribeJob]
    replies = {**StandInMaster.REPLIES,
               p.DescribeJob: dataclasses.replace(description, metrics=p.pack_serialized([report]))}
    with StandInMaster(replies) as master:
        result, modules = run_jet("--addresses", master.address, "--key-file", "none", "describe", "stand-in")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split()[:3] == ["v", "0", "5"]
    assert loaded(modules, NOT_FOR_DESCRIBE) == []


def test_list_jobs_loads_no_psutil():
    with StandInMaster() as master:
        result, modules = run_jet("--addresses", master.address, "--key-file", "none", "list-jobs")
    assert result.returncode == 0, result.stderr
    assert loaded(modules, ["psutil"]) == []


def test_every_command_has_a_handler_that_imports():
    # the handlers are named by module and function, so a rename shows here, not in a user's hands
    for command in COMMANDS:
        assert callable(handler_of(command)), command
