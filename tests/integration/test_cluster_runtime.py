"""The cluster runtime on real processes: a master, forked and joined members, the CLIs.

No mocks: every test starts a real master (through ``jetmq.Cluster`` or ``jet-start``),
kills or pauses processes on purpose, and waits for the outcome with ``wait_until``.
Heartbeats are fast here (interval 100 ms, timeout 1000 ms) so failure detection by
silence takes about a second. Every process a test starts is registered with the
``processes`` fixture, which kills it at teardown and fails the test if anything of
it is left running.
"""
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import zmq

import jetmq
import jetmq.requester
from jetmq.version import PYTHON_VERSION, __version__
from jetmq import protocol as p
from jetmq import transport
from jetmq.config import JOB_THREAD_NICE, MASTER_SILENCE_FACTOR
from jetmq.testing import wait_until
from tests.integration.keys import authenticated

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

INTERVAL_MS = 100  # as the `cluster` fixture
TIMEOUT_MS = 1000
HEARTBEAT_OPTIONS = ("--heartbeat-interval-ms", str(INTERVAL_MS), "--heartbeat-timeout-ms", str(TIMEOUT_MS))
TIMEOUT_S = TIMEOUT_MS / 1000
#: Slack for scheduling on a loaded 2-core machine on top of a detector's own delay.
MARGIN_S = 1.5
#: Forked members and killed joined members are noticed through pidfds and disconnect events.
INSTANT_DETECTION_S = 1.0
JOIN_TIMEOUT_S = 15.0
#: A usage error is reported at once; a tool still running after this accepted the bad argument.
USAGE_ERROR_WAIT_S = 5.0
#: Requests that check whether a master survived something wait this long, not the client's 4 s.
QUICK_REQUEST_TIMEOUT_S = 1.0
MEMBER_ROW = "%-24s %-19s %-8s %s"
MEMBER_HEADER = MEMBER_ROW % ("ADDRESS", "UUID", "PID", "RESTARTS")
FUZZ_SEED = 4_000_000


# ---- helpers -----------------------------------------------------------------------------------


def is_gone(process: psutil.Process) -> bool:
    """Exited (a zombie waiting for its parent counts: it runs nothing)."""
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def handles(pids) -> list[psutil.Process]:
    return [psutil.Process(pid) for pid in pids]


def alive(process_list) -> list[int]:
    return [proc.pid for proc in process_list if not is_gone(proc)]


def timed_wait(condition, timeout_s: float, message) -> float:
    """Seconds until ``condition`` held (AssertionError with ``message`` after ``timeout_s``)."""
    start = time.monotonic()
    wait_until(condition, timeout_s, message)
    return time.monotonic() - start


def report(what: str, seconds: float) -> None:
    print(f"[measured] {what}: {seconds * 1000:.0f} ms", file=sys.stderr)


def expected_cluster_lines(state) -> list[str]:
    return [
        "State: ACTIVE",
        f"Version: {jetmq.__version__}",
        f"Size: {len(state.members)}",
        "",
        MEMBER_HEADER,
        *[MEMBER_ROW % (m.address, m.uuid, m.pid, m.restarts) for m in state.members],
    ]


def master_alive(cluster):
    """A condition helper: fails the wait at once if the master died."""
    code = cluster.master_process.poll()
    assert code is None, f"the master exited with code {code}; see {cluster.data_dir}/logs/master.log"
    return True


def start_joined_member(processes, address: str, log_path, *extra):
    """``jet-start --join address`` in the foreground, registered for teardown."""
    return processes.start_cli("start", "--join", address, *HEARTBEAT_OPTIONS, "--log-file", str(log_path), *extra,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for_member_with_pid(cluster, pid: int):
    def find():
        return next((m for m in cluster.cluster().members if m.pid == pid), None)
    return wait_until(find, JOIN_TIMEOUT_S, lambda: f"pid {pid} never joined: members {cluster.cluster().members}")


def members_line(cluster) -> str:
    return ", ".join(f"{m.uuid[:8]}/pid {m.pid}" for m in cluster.cluster().members)


def master_log(cluster) -> str:
    return (cluster.data_dir / "logs" / "master.log").read_text()


def removal_reason(cluster, uuid: str) -> str:
    """Why the master last removed member ``uuid``, from its log."""
    reasons = re.findall(rf"member {re.escape(uuid)} \(.*?\) removed: (.*?); size now", master_log(cluster))
    return reasons[-1] if reasons else "(not logged)"


def members_now(cluster):
    """The members the master lists, on a fresh connection with a short timeout; an
    AssertionError naming the exit code if the master died."""
    master_alive(cluster)
    try:
        with jetmq.JetClient(cluster.address, timeout_s=QUICK_REQUEST_TIMEOUT_S) as client:
            return client.cluster().members
    except jetmq.ClusterUnreachableError:
        master_alive(cluster)
        raise


# ---- 1. jet cluster ----------------------------------------------------------------------------


def test_jet_cluster_prints_state_version_size_and_one_row_per_member(cluster, run_cli):
    # Given a running 2-member cluster
    state = cluster.cluster()
    assert state.size == 2
    # When `jet cluster` asks it
    result = run_cli("jet", "--addresses", cluster.address, "cluster")
    # Then it prints Jet's format, exactly, with the members the client sees
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected_cluster_lines(state)
    assert result.stdout.endswith("\n")
    # and every row is a real member process forked by this master
    master = psutil.Process(cluster.master_pid)
    assert {m.pid for m in state.members} == {c.pid for c in master.children()}
    assert all(m.forked and m.host == socket.gethostname() for m in state.members)
    assert state.master_pid == cluster.master_pid


# ---- 2. a forked member killed -------------------------------------------------------------------


def test_when_a_forked_member_is_killed_then_the_master_removes_it_within_a_second(cluster, run_cli):
    # Given a 2-member cluster
    victim, survivor = cluster.cluster().members
    # When one member is SIGKILLed
    start = time.monotonic()
    os.kill(victim.pid, signal.SIGKILL)
    # Then the master drops it at once (it watches its children through pidfds)
    wait_until(lambda: cluster.cluster().size == 1, 5, lambda: f"member still listed: {members_line(cluster)}")
    elapsed = time.monotonic() - start
    reason = removal_reason(cluster, victim.uuid)
    report(f"forked member SIGKILL -> removed ({reason})", elapsed)
    assert elapsed < INSTANT_DETECTION_S
    assert "killed by SIGKILL" in reason or reason == "its connection closed"  # pidfd or disconnect: first wins
    # and `jet cluster` shows the survivor alone
    result = run_cli("jet", "--addresses", cluster.address, "cluster")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[2] == "Size: 1"
    assert lines[5:] == [MEMBER_ROW % (survivor.address, survivor.uuid, survivor.pid, survivor.restarts)]


# ---- 3. joined members: killed, hung, resumed ------------------------------------------------------


def test_joined_members_killed_or_hung_are_removed_and_a_resumed_one_rejoins(cluster, processes, tmp_path):
    # Given a joined member next to the two forked ones
    joined = start_joined_member(processes, cluster.address, tmp_path / "joined-a.log")
    member_a = wait_for_member_with_pid(cluster, joined.pid)
    assert cluster.cluster().size == 3 and not member_a.forked
    # When it is SIGKILLed (not a child of the master: it learns from the closed connection, or psutil)
    start = time.monotonic()
    joined.kill()
    joined.wait()
    wait_until(lambda: cluster.cluster().size == 2, 5, lambda: f"killed joined member still listed: {members_line(cluster)}")
    elapsed = time.monotonic() - start
    report(f"joined member SIGKILL -> removed ({removal_reason(cluster, member_a.uuid)})", elapsed)
    # Then it is gone within a second
    assert elapsed < INSTANT_DETECTION_S
    assert member_a.uuid not in {m.uuid for m in cluster.cluster().members}

    # Given another joined member
    hung = start_joined_member(processes, cluster.address, tmp_path / "joined-b.log")
    member_b = wait_for_member_with_pid(cluster, hung.pid)
    # When it hangs (SIGSTOP: its connection stays open, its heartbeats stop)
    start = time.monotonic()
    hung.send_signal(signal.SIGSTOP)
    try:
        wait_until(lambda: cluster.cluster().size == 2, TIMEOUT_S + 2 + MARGIN_S,
                   lambda: f"hung member still listed: {members_line(cluster)}")
        elapsed = time.monotonic() - start
        report(f"joined member SIGSTOP -> removed ({removal_reason(cluster, member_b.uuid)})", elapsed)
        # Then it is removed after the heartbeat timeout, not before and not much later
        assert TIMEOUT_S - 2 * INTERVAL_MS / 1000 <= elapsed < TIMEOUT_S + 2
        assert "no heartbeat" in removal_reason(cluster, member_b.uuid)
    finally:
        # When it resumes
        hung.send_signal(signal.SIGCONT)
    # Then it joins again, as the same member
    elapsed = timed_wait(lambda: member_b.uuid in {m.uuid for m in cluster.cluster().members}, JOIN_TIMEOUT_S,
                         lambda: f"resumed member did not rejoin: {members_line(cluster)}")
    report("joined member SIGCONT -> rejoined", elapsed)
    assert cluster.cluster().size == 3
    assert hung.poll() is None

    # and SIGTERM makes it leave gracefully: a goodbye, exit code 0
    hung.terminate()
    assert hung.wait(timeout=10) == 0
    wait_until(lambda: cluster.cluster().size == 2, 5, lambda: f"departed member still listed: {members_line(cluster)}")
    assert "it left" in removal_reason(cluster, member_b.uuid)


# ---- 4. the master killed ------------------------------------------------------------------------


def test_when_the_master_is_killed_then_every_forked_member_exits(cluster):
    # Given a 2-member cluster
    members = cluster.cluster().members
    member_processes = handles(m.pid for m in members)
    # When the master is SIGKILLed
    start = time.monotonic()
    cluster.master_process.kill()
    cluster.master_process.wait()
    # Then its members exit at once: the kernel kills them with their parent (PR_SET_PDEATHSIG)
    wait_until(lambda: not alive(member_processes), TIMEOUT_S + MARGIN_S,
               lambda: f"orphaned members still running: {alive(member_processes)}")
    elapsed = time.monotonic() - start
    report("master SIGKILL -> all forked members exited", elapsed)
    assert elapsed < INSTANT_DETECTION_S


# ---- 5. jet-stop, and SIGTERM to jet-start ---------------------------------------------------------


def test_jet_stop_stops_a_daemon_cluster_and_then_finds_none(processes, run_cli, free_port, tmp_path, monkeypatch):
    port = free_port()
    address = f"127.0.0.1:{port}"
    data_dir = tmp_path / "data"
    monkeypatch.setenv("JET_KEY_FILE", str(data_dir / "cluster.key"))  # made by the master at its start
    # Given a cluster started with --daemon
    started = run_cli("start", "--daemon", "-m", "2", "--port", port, "--data-dir", data_dir, *HEARTBEAT_OPTIONS)
    assert started.returncode == 0, started.stderr
    match = re.fullmatch(rf"jetmq cluster 'jet' is ready at {re.escape(address)}: master pid (\d+), 2 members, "
                         rf"data dir {re.escape(str(data_dir))}\n", started.stdout)
    assert match, started.stdout
    master_pid = int(match.group(1))
    processes.add(master_pid)
    with jetmq.JetClient(address) as client:
        state = client.cluster()
    for m in state.members:
        processes.add(m.pid)
    listed = run_cli("jet", "--addresses", address, "cluster")
    assert listed.returncode == 0, listed.stderr
    listed_pids = {int(line.split()[2]) for line in listed.stdout.splitlines()[5:]}
    assert listed_pids == {m.pid for m in state.members} and len(listed_pids) == 2
    assert state.master_pid == master_pid
    assert (data_dir / "master.pid").read_text().strip() == str(master_pid)
    everything = handles([master_pid, *listed_pids])
    # When jet-stop is run
    stopped = run_cli("stop", "--addresses", address)
    # Then it succeeds once the master and every member have exited
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == (f"Stopped the jetmq cluster 'jet' at {address} "
                              f"(master pid {master_pid}, 2 forked members)\n")
    assert alive(everything) == []
    assert not (data_dir / "master.pid").exists()
    # and a second jet-stop finds nothing to stop
    again = run_cli("stop", "--addresses", address)
    assert again.returncode == 1
    assert f"No jetmq cluster found to stop at {address}" in again.stderr


def test_sigterm_to_a_foreground_jet_start_stops_the_master_and_its_members(processes, free_port, tmp_path,
                                                                           monkeypatch):
    port = free_port()
    address = f"127.0.0.1:{port}"
    data_dir = tmp_path / "data"
    monkeypatch.setenv("JET_KEY_FILE", str(data_dir / "cluster.key"))  # made by the master at its start
    out = tmp_path / "jet-start.out"
    # Given a cluster started in the foreground
    with open(out, "w") as stdout, open(tmp_path / "jet-start.err", "w") as stderr:
        master = processes.start_cli("start", "-m", "2", "--port", port, "--data-dir", data_dir, *HEARTBEAT_OPTIONS,
                                     stdout=stdout, stderr=stderr)
    wait_until(lambda: "is ready at" in out.read_text() or master.poll() is not None, 30,
               "the foreground jet-start never said it was ready")
    assert master.poll() is None, (tmp_path / "jet-start.err").read_text()
    assert f"is ready at {address}: master pid {master.pid}, 2 members" in out.read_text()
    with jetmq.JetClient(address) as client:
        pids = [m.pid for m in client.cluster().members]
    everything = handles([master.pid, *pids])
    assert (data_dir / "master.pid").read_text().strip() == str(master.pid)
    # When it gets SIGTERM
    master.send_signal(signal.SIGTERM)
    # Then it stops its members, removes its pid file and exits 0
    assert master.wait(timeout=20) == 0, (tmp_path / "jet-start.err").read_text()[-3000:]
    assert alive(everything) == []
    assert not (data_dir / "master.pid").exists()


# ---- 6. a port in use --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [[], ["--daemon"]], ids=["foreground", "daemon"])
def test_a_second_jet_start_on_a_port_in_use_fails_and_leaves_the_first_cluster_alone(cluster, run_cli, mode):
    port = cluster.address.rsplit(":", 1)[1]
    before = cluster.cluster()
    # When another master is started on the same port
    second = run_cli("start", *mode, "-m", "1", "--port", port)
    # Then it fails, naming the address and the reason (a foreground jet-start logs to stderr too)
    assert second.returncode == 1
    errors = [line for line in second.stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1, second.stderr
    assert cluster.address in errors[0] and "already in use" in errors[0]
    # and the first cluster still answers, unchanged
    after = cluster.cluster()
    assert (after.master_pid, after.members, after.membership_version) == \
        (before.master_pid, before.members, before.membership_version)
    # and the second master left no pid file behind in its (default) data dir
    assert list(Path(os.environ["XDG_STATE_HOME"]).rglob("master.pid")) == []


# ---- 7. bad addresses and usage errors ----------------------------------------------------------------


def test_an_unreachable_address_is_an_error_naming_it_within_five_seconds(run_cli, free_port):
    address = f"127.0.0.1:{free_port()}"
    start = time.monotonic()
    result = run_cli("jet", "--addresses", address, "cluster", timeout=30)
    elapsed = time.monotonic() - start
    report("jet cluster on an unreachable address -> error", elapsed)
    assert result.returncode == 1
    assert result.stderr.startswith("ERROR: ")
    assert address in result.stderr.splitlines()[0]
    assert "Traceback" not in result.stderr
    assert elapsed < 5.0


@pytest.mark.parametrize("tool, args", [
    ("jet", ["--addresses", "127.0.0.1:notaport", "cluster"]),
    ("jet", ["--addresses", "127.0.0.1:99999", "cluster"]),
    ("jet", ["--addresses", ":5701", "cluster"]),
    ("jet", ["--addresses", "no such host:5701", "cluster"]),
    ("stop", ["--addresses", "127.0.0.1:"]),
    ("start", ["--join", "127.0.0.1:x"]),
    ("start", ["--port", "abc"]),
    ("start", ["--port", "70000", "-m", "1"]),
    ("start", ["-m", "-1"]),
    ("start", ["--heartbeat-interval-ms", "500", "--heartbeat-timeout-ms", "100"]),
    ("start", ["--job-nice", "20", "-m", "1"]),
    ("start", ["--join", "127.0.0.1:5701", "--job-nice", "-1"]),
], ids=["jet-bad-port", "jet-port-range", "jet-no-host", "jet-space-in-host", "stop-no-port", "join-bad-port",
        "start-port-text", "start-port-range", "start-negative-members", "start-timeout-below-interval",
        "start-job-nice-range", "join-job-nice-range"])
def test_a_malformed_argument_is_a_usage_error_with_exit_code_2(run_cli, processes, tool, args):
    try:
        result = run_cli(tool, *args, timeout=USAGE_ERROR_WAIT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{tool} {' '.join(args)} was still running after {USAGE_ERROR_WAIT_S} s instead of refusing")
    assert result.returncode == 2, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.stderr.startswith("ERROR: ")
    assert "Traceback" not in result.stderr


def test_jet_version_prints_the_version(run_cli):
    result = run_cli("jet", "--version")
    assert result.returncode == 0
    assert result.stdout == f"jetmq {jetmq.__version__}\n"


@pytest.mark.parametrize("args", [["frobnicate"], ["cluster", "extra"], []])
def test_an_unknown_command_exits_2_with_usage(run_cli, args):
    result = run_cli("jet", *args)
    assert result.returncode == 2
    assert "Usage:" in result.stderr or "usage:" in result.stderr.lower()


# ---- 7a. the job channel -------------------------------------------------------------------------


def connections_to_master(cluster, pid: int) -> int:
    """How many established TCP connections process ``pid`` has to the master's port."""
    port = int(cluster.address.rpartition(":")[2])
    process = psutil.Process(pid)
    connections = (process.net_connections if hasattr(process, "net_connections") else process.connections)("tcp")
    return sum(1 for c in connections if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED)


def list_job_round_trip(cluster, name: str, count: int = 1000) -> None:
    """A batch job writes ``count`` items to a list from every member; all are there when join() returns."""
    from jetmq.pipeline import Pipeline, Sinks, Sources
    pipeline = Pipeline()
    pipeline.read_from(Sources.items(range(count))).rebalance(lambda i: i).write_to(Sinks.list(name))
    job = cluster.new_job(pipeline)
    job.join()
    assert sorted(cluster.get_list(name)) == list(range(count))


def test_a_member_tells_the_master_everything_on_its_job_channel_beside_its_link(cluster, processes, tmp_path):
    # Given a joined member beside the forked ones
    joined = start_joined_member(processes, cluster.address, tmp_path / "joined.log")
    member = wait_for_member_with_pid(cluster, joined.pid)
    # Then every member holds two connections to the master: its link, and its main thread's job channel
    for m in cluster.cluster().members:
        wait_until(lambda: connections_to_master(cluster, m.pid) == 2, JOIN_TIMEOUT_S,
                   lambda: f"member pid {m.pid}: {connections_to_master(cluster, m.pid)} connections to the master")
    # When jobs on every member write to a list: each write reaches the master before the job's completion
    for attempt in range(3):
        list_job_round_trip(cluster, f"channel-{attempt}")
    # When the joined member leaves (SIGTERM): its goodbye, on the channel after all it sent, is taken,
    # and the master's acknowledgement reaches its link, which then lets it exit
    joined.terminate()
    assert joined.wait(timeout=10) == 0
    assert removal_reason(cluster, member.uuid).startswith("it left:"), master_log(cluster)[-2000:]
    member_log = (tmp_path / "joined.log").read_text()
    assert "the master acknowledged our goodbye" in member_log, member_log[-2000:]


# ---- 7b. the job thread's priority -------------------------------------------------------------------


def thread_nices(pid: int) -> dict[str, list[int]]:
    """The nice value of each thread of process ``pid``, by thread name ("main" for the main one)."""
    nices: dict[str, list[int]] = {}
    for thread in psutil.Process(pid).threads():
        name = "main" if thread.id == pid else Path(f"/proc/{pid}/task/{thread.id}/comm").read_text().strip()
        nices.setdefault(name, []).append(os.getpriority(os.PRIO_PROCESS, thread.id))
    return nices


def test_members_run_their_jobs_on_a_thread_nicer_than_their_io_threads_by_job_nice(cluster, processes, tmp_path):
    base = os.getpriority(os.PRIO_PROCESS, 0)  # what the master, and so its forked members, started with
    # Given the forked members (default --job-nice) and a member joined with --job-nice 3
    joined = start_joined_member(processes, cluster.address, tmp_path / "joined.log", "--job-nice", "3")
    wait_for_member_with_pid(cluster, joined.pid)
    forked = [m.pid for m in cluster.cluster().members if m.forked]
    assert forked, "the fixture's cluster has no forked member"
    expected = {pid: min(19, base + JOB_THREAD_NICE) for pid in forked} | {joined.pid: min(19, base + 3)}
    for pid, job_thread in expected.items():
        nices = thread_nices(pid)
        # Then the main thread, which runs the jobs, is nicer by that much...
        assert nices["main"] == [job_thread], f"member pid {pid}: {nices}"
        # ... and ZeroMQ's I/O thread and the master link still run at the priority the member started with
        assert nices["ZMQbg/IO/0"] == [base], f"member pid {pid}: {nices}"
        others = [n for name, values in nices.items() if name not in ("main", "ZMQbg/IO/0") for n in values]
        assert others and set(others) == {base}, f"member pid {pid}: {nices}"
    # And the master is untouched
    assert set(n for values in thread_nices(cluster.master_pid).values() for n in values) == {base}


# ---- 8. a member of another cluster ----------------------------------------------------------------


def test_a_member_with_another_cluster_name_is_refused_and_exits_4(cluster, run_cli):
    before = cluster.cluster()
    # When a member of cluster 'other' tries to join cluster 'jet'
    result = run_cli("start", "--join", cluster.address, "--cluster-name", "other", *HEARTBEAT_OPTIONS, timeout=30)
    # Then it is refused and exits with code 4 (REFUSED), saying why
    assert result.returncode == 4, result.stderr[-3000:]
    assert "this is cluster 'jet', not 'other'" in result.stderr
    # and the cluster did not change
    after = cluster.cluster()
    assert (after.members, after.membership_version) == (before.members, before.membership_version)


# ---- 9. foreign and malformed traffic ----------------------------------------------------------------


ZMTP_GREETING = b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31


def header(corr: int = 0, version: int = p.PROTOCOL_VERSION) -> bytes:
    return struct.pack("!BQ", version, corr)


def frames_with_body(name: str, body) -> list[bytes]:
    return [p.MAGIC, header(), name.encode(), json.dumps(body).encode()]


def targeted_bad_messages() -> list[list[bytes]]:
    hello = json.loads(p.encode(p.Hello("u-fuzz", 1, "h", "127.0.0.1:1", False, "jet", __version__, PYTHON_VERSION, ""))[3])
    return [
        [b"NOTJETMQ", header(), b"ClusterRequest", b"{}"],  # wrong magic
        [p.MAGIC],  # too few frames
        [p.MAGIC, header(), b"ClusterRequest"],
        [p.MAGIC, b"\x01\x02", b"ClusterRequest", b"{}"],  # bad header
        [p.MAGIC, header(version=9), b"ClusterRequest", b"{}"],  # wrong version
        [p.MAGIC, header(), b"NoSuchRequest", b"{}"],  # unknown type
        [p.MAGIC, header(), b"\xff\xfe", b"{}"],
        [p.MAGIC, header(), b"ClusterRequest", b"{not json"],  # garbage JSON
        [p.MAGIC, header(), b"Goodbye", b"\xff\xfe\xfd"],
        [p.MAGIC, header(), b"ClusterRequest", b"[]"],
        frames_with_body("Hello", {**hello, "pid": "1"}),  # known type, wrong field types
        frames_with_body("Hello", {**hello, "forked": 1}),
        frames_with_body("Hello", {**hello, "member_uuid": None}),
        frames_with_body("Hello", {k: v for k, v in hello.items() if k != "host"}),
        frames_with_body("Hello", {**hello, "extra": True}),
        frames_with_body("Goodbye", {"reason": 7}),
        frames_with_body("GetJob", {"job_id": "0401-9f77-b9c0-0001"}),
        frames_with_body("Welcome", {"master_uuid": "x", "heartbeat_interval_ms": 1, "heartbeat_timeout_ms": 2,
                                     "membership_version": 3}),  # a type the master does not serve
        p.encode(p.ErrorReply("JetError", "not for the master")),
        p.encode(p.ClusterReply("ACTIVE", "0", "jet", 1, "h", 1, (), (), (), ())),
        [p.MAGIC, header(), b"ClusterRequest", os.urandom(5 * 1024 * 1024)],  # a huge frame
        [os.urandom(5 * 1024 * 1024)],
    ]


def malformed_message(rng: random.Random, names: list[bytes]) -> list[bytes]:
    """Random frames that are not a valid message (a valid one, say a StopClusterRequest, would act)."""
    while True:
        frames = random_frames(rng, names)
        try:
            p.decode(frames)
        except p.ProtocolError:
            return frames


def random_frames(rng: random.Random, names: list[bytes]) -> list[bytes]:
    def random_json(depth=0):
        kind = rng.randrange(7 if depth < 4 else 5)
        return [lambda: rng.randint(-2**40, 2**40), lambda: "".join(rng.choice("ab\u00e9\"\\") for _ in range(5)),
                lambda: None, lambda: rng.random() < 0.5, lambda: 1.5,
                lambda: [random_json(depth + 1) for _ in range(rng.randrange(4))],
                lambda: {rng.choice(["pid", "reason", "job_id", "$blob", "x"]): random_json(depth + 1)
                         for _ in range(rng.randrange(4))}][kind]()

    parts = [
        lambda: p.MAGIC, lambda: header(rng.randrange(2**64)), lambda: rng.choice(names),
        lambda: json.dumps(random_json()).encode(), lambda: rng.randbytes(rng.randrange(64)), lambda: b"",
    ]
    if rng.random() < 0.5:  # a plausible envelope with a random body
        return [p.MAGIC, header(rng.randrange(2**64)), rng.choice(names), json.dumps(random_json()).encode(),
                *[rng.randbytes(rng.randrange(16)) for _ in range(rng.randrange(3))]]
    return [rng.choice(parts)() for _ in range(rng.randint(1, 6))]


def expect_reply(dealer, timeout_s: float = 5.0):
    if not dealer.poll(int(timeout_s * 1000)):
        raise AssertionError(f"no reply within {timeout_s} s")
    return p.decode(dealer.recv_multipart())


def sync_with_master(dealer, corr: int) -> None:
    """A ClusterRequest behind everything sent on ``dealer``: once it is answered, all was read."""
    dealer.send_multipart(p.encode(p.ClusterRequest(), corr))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        msg, reply_corr = expect_reply(dealer, deadline - time.monotonic())
        if reply_corr == corr:
            assert isinstance(msg, p.ClusterReply)
            return
    raise AssertionError("the master did not answer a ClusterRequest after the fuzz")


@pytest.fixture
def zmq_context():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def dealer_to(context, address: str):
    """A raw DEALER to the master, presenting the cluster's key (a key holder that misbehaves)."""
    dealer = authenticated(context.socket(zmq.DEALER))
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(f"tcp://{address}")
    return dealer


def assert_master_serves(cluster, run_cli, before) -> None:
    """The master is alive, lists the members it listed ``before``, and `jet cluster` works."""
    master_alive(cluster)
    members = members_now(cluster)
    after = cluster.cluster()
    assert (after.master_pid, members, after.membership_version) == \
        (before.master_pid, before.members, before.membership_version)
    result = run_cli("jet", "--addresses", cluster.address, "cluster")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected_cluster_lines(after)


def test_random_bytes_over_raw_tcp_leave_the_master_serving_the_same_members(cluster, run_cli):
    rng = random.Random(FUZZ_SEED)
    before = cluster.cluster()
    host, port = cluster.address.rsplit(":", 1)
    # Given strangers speaking raw TCP to the control port: random bytes, a ZMTP greeting then
    # garbage, some connections reset (RST) rather than closed, and one that stays silent
    idle = socket.create_connection((host, int(port)), timeout=5)
    try:
        for i in range(12):
            with socket.create_connection((host, int(port)), timeout=5) as s:
                payload = (ZMTP_GREETING if i % 3 == 0 else b"") + rng.randbytes(rng.randint(1, 64 * 1024))
                try:
                    s.sendall(payload)
                except OSError:
                    pass  # the master may hang up first: that is its right
                if i % 2:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # Then the master still answers, with the same members
        wait_until(lambda: members_now(cluster) == before.members, 10,
                   "the master stopped serving after raw TCP garbage")
    finally:
        idle.close()
    assert_master_serves(cluster, run_cli, before)


def test_malformed_zeromq_messages_leave_the_master_serving_the_same_members(cluster, run_cli, zmq_context):
    rng = random.Random(FUZZ_SEED)
    before = cluster.cluster()
    # Given a ZeroMQ peer sending malformed multipart messages: wrong magic, bad headers, garbage
    # JSON, known types with wrongly typed fields, replies the master never serves, 5 MB frames
    dealer = dealer_to(zmq_context, cluster.address)
    for frames in targeted_bad_messages():
        dealer.send_multipart(frames)
    # and a Heartbeat and a Goodbye from peers that never said hello, which are refused
    for msg in (p.Heartbeat(0), p.Goodbye("never joined")):
        stranger = dealer_to(zmq_context, cluster.address)
        stranger.send_multipart(p.encode(msg))
        refused, _ = expect_reply(stranger)
        assert isinstance(refused, p.Refused) and "unknown member" in refused.reason
        stranger.close()
    # and 500 random messages over three connections, one of them closed half-way
    names = [n.encode() for n in p.message_types()] + [b"Nope"]
    dealers = [dealer, dealer_to(zmq_context, cluster.address), dealer_to(zmq_context, cluster.address)]
    for i in range(500):
        if i == 250:
            dealers.pop().close()  # gone without a word, maybe with messages still queued
        dealers[i % len(dealers)].send_multipart(malformed_message(rng, names))
    # When the master has read all of it (a request behind it on each connection is answered)
    for corr, d in enumerate(dealers, start=1):
        sync_with_master(d, corr)
    # Then it is alive, serves the same two members, and logged what it dropped
    assert_master_serves(cluster, run_cli, before)
    assert "dropped a malformed message" in master_log(cluster)


def test_a_deeply_nested_json_body_is_dropped_not_fatal(cluster, zmq_context):
    # json.loads raises RecursionError, not ValueError, on deep nesting
    before = cluster.cluster()
    dealer = dealer_to(zmq_context, cluster.address)
    dealer.send_multipart([p.MAGIC, header(), b"ClusterRequest", b"[" * 100_000])
    dealer.send_multipart([p.MAGIC, header(), b"Heartbeat", b'{"a":' * 100_000])
    wait_until(lambda: members_now(cluster) == before.members, 10,
               "the master stopped serving after a deeply nested body")
    sync_with_master(dealer, 1)
    master_alive(cluster)


def test_a_hello_with_an_impossible_pid_does_not_take_the_master_down(cluster, zmq_context):
    # A stranger claims to be a joined member on this host with pid -1: the master's check of
    # local joined members asks psutil about that pid, which raises ValueError
    before = cluster.cluster()
    dealer = dealer_to(zmq_context, cluster.address)
    dealer.send_multipart(p.encode(p.Hello("fake-member", -1, socket.gethostname(), "127.0.0.1:9", False, "jet", __version__,
                                                PYTHON_VERSION, "")))
    expect_reply(dealer)  # Welcome or Refused: either way the master read it
    # Then the master survives, and the impostor (silent, and no such process) is gone in time
    wait_until(lambda: members_now(cluster) == before.members,
               TIMEOUT_S + MARGIN_S + 1, lambda: f"members: {members_line(cluster)}")
    sync_with_master(dealer, 1)


# ---- stopping: the last words of a master -----------------------------------------------------------


def test_jet_stop_stops_a_master_whose_members_all_joined(processes, run_cli, free_port, tmp_path, monkeypatch):
    # Given a master with no forked members (-m 0) and one joined member
    monkeypatch.setenv("JET_KEY_FILE", str(tmp_path / "data" / "cluster.key"))  # made by the master at its start
    port = free_port()
    address = f"127.0.0.1:{port}"
    started = run_cli("start", "--daemon", "-m", "0", "--port", port, "--data-dir", tmp_path / "data",
                      *HEARTBEAT_OPTIONS)
    assert started.returncode == 0, started.stderr
    master_pid = int(re.search(r"master pid (\d+)", started.stdout).group(1))
    master = processes.add(master_pid)
    joined = start_joined_member(processes, address, tmp_path / "joined.log")
    with jetmq.JetClient(address) as client:
        wait_until(lambda: [m.pid for m in client.cluster().members] == [joined.pid], JOIN_TIMEOUT_S,
                   "the member never joined")
    # When jet-stop is run
    stopped = run_cli("stop", "--addresses", address)
    # Then it reports the cluster stopped (the master exits right after its reply: the reply must
    # not be lost on the way), and the joined member was told to shut down and exited 0
    assert stopped.returncode == 0, f"exit {stopped.returncode}: {stopped.stderr}"
    assert stopped.stdout == f"Stopped the jetmq cluster 'jet' at {address} (master pid {master_pid}, 0 forked members)\n"
    wait_until(lambda: is_gone(master), 5, "the master is still running after jet-stop")
    try:
        code = joined.wait(timeout=TIMEOUT_S + MARGIN_S)
    except subprocess.TimeoutExpired:
        pytest.fail("the joined member never got its Shutdown: it is waiting for the stopped master to come back")
    assert code == 0


def test_a_reply_that_arrived_before_the_master_hung_up_is_not_lost(monkeypatch):
    # A master that stops answers StopClusterRequest and exits at once. The client's reply is then
    # in its socket when the connection drops; it must still be readable. The client is made to
    # read late on purpose: its poller waits for the hang-up before looking (a "pause here" sentinel).
    request_seen, client_waiting, hung_up = threading.Event(), threading.Event(), threading.Event()

    class PollerThatReadsAfterTheHangUp(transport.Poller):
        def poll(self, timeout_s):
            if not request_seen.is_set():
                return super().poll(min(timeout_s, 0.01))  # nothing to read before the request is seen
            if not client_waiting.is_set():
                client_waiting.set()
                assert hung_up.wait(5), "the fake master never hung up"
            return super().poll(timeout_s)

    monkeypatch.setattr(jetmq.requester, "Poller", PollerThatReadsAfterTheHangUp)
    master_context = zmq.Context()
    router = master_context.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")

    def fake_master():
        try:
            if router.poll(5000):
                peer, *frames = router.recv_multipart()
                _, corr = p.decode(frames)
                request_seen.set()
                client_waiting.wait(5)
                router.send_multipart([peer, *p.encode(p.StopClusterReply(4242, ()), corr)])
        finally:
            master_context.destroy(linger=1000)  # flush the reply, then hang up
            hung_up.set()

    thread = threading.Thread(target=fake_master, daemon=True)
    thread.start()
    try:
        with jetmq.JetClient(f"127.0.0.1:{port}", timeout_s=1.0) as client:
            pids = client.shutdown_cluster()
    finally:
        thread.join(timeout=10)
    assert pids == (4242,)


class FakeMaster:
    """A ROUTER the test drives by hand, to put a member in situations a real master reaches by races."""

    def __init__(self, context, port: int):
        self.router = context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.bind(f"tcp://127.0.0.1:{port}")

    def expect(self, msg_type, member, timeout_s: float):
        """The next ``msg_type`` from the member (other types skipped): (peer, msg)."""
        def receive():
            code = member.poll()
            assert code is None, f"the member exited with code {code}"
            while self.router.poll(0):
                peer, *frames = self.router.recv_multipart()
                msg, _corr = p.decode(frames)
                if isinstance(msg, msg_type):
                    return peer, msg
            return None
        return wait_until(receive, timeout_s, f"no {msg_type.__name__} from the member")

    def send(self, peer: bytes, msg) -> None:
        self.router.send_multipart([peer, *p.encode(msg)])


def test_a_stale_refusal_does_not_make_a_rejoining_joined_member_quit(processes, free_port, tmp_path, zmq_context):
    # A master that expired a member refuses each of its heartbeats still in flight ("unknown member").
    # The first refusal sends the member back to joining; the next ones reach it while it rejoins.
    # They answer heartbeats, not its hello: a joined member must keep trying, not exit as REFUSED.
    port = free_port()
    master = FakeMaster(zmq_context, port)
    member = start_joined_member(processes, f"127.0.0.1:{port}", tmp_path / "member.log")
    peer, _hello = master.expect(p.Hello, member, JOIN_TIMEOUT_S)
    master.send(peer, p.Welcome("fake-master", INTERVAL_MS, TIMEOUT_MS, 1, "/nonexistent", "none", 1))
    master.expect(p.Heartbeat, member, 5)
    # When two heartbeats are refused back to back
    master.send(peer, p.Refused("unknown member: say Hello first"))
    master.send(peer, p.Refused("unknown member: say Hello first"))
    # Then the member says hello again, and is a member once welcomed
    peer, _hello = master.expect(p.Hello, member, 5)
    master.send(peer, p.Welcome("fake-master", INTERVAL_MS, TIMEOUT_MS, 2, "/nonexistent", "none", 1))
    master.expect(p.Heartbeat, member, 5)
    assert member.poll() is None
    # and SIGTERM still ends it gracefully: it asks to leave, the master lets it go
    member.terminate()
    peer, _leave = master.expect(p.LeaveRequest, member, 5)
    master.send(peer, p.Shutdown("test over"))
    assert member.wait(timeout=10) == 0


# ---- 10. the master paused ---------------------------------------------------------------------------


def test_when_the_master_is_paused_then_forked_members_exit_and_it_still_stops_cleanly(cluster):
    members = cluster.cluster().members
    member_processes = handles(m.pid for m in members)
    master = psutil.Process(cluster.master_pid)
    # When the master hangs (SIGSTOP)
    start = time.monotonic()
    master.suspend()
    try:
        # Then its members stop hearing heartbeats and exit within their (longer) timeout for the master
        wait_until(lambda: not alive(member_processes), MASTER_SILENCE_FACTOR * TIMEOUT_S + MARGIN_S,
                   lambda: f"members still running under a paused master: {alive(member_processes)}")
        report("master SIGSTOP -> all forked members exited", time.monotonic() - start)
    finally:
        master.resume()
    for m in members:
        log = (cluster.data_dir / "logs" / f"member-{m.uuid[:8]}.log").read_text()
        assert "exiting with MASTER_LOST" in log, log[-2000:]
    # When it resumes, it learns they are gone, and stops cleanly on SIGTERM
    wait_until(lambda: cluster.cluster().size == 0, 10, lambda: f"dead members still listed: {members_line(cluster)}")
    cluster.master_process.terminate()
    assert cluster.master_process.wait(timeout=20) == 0
    assert not (cluster.data_dir / "master.pid").exists()


def test_when_the_master_is_paused_then_a_joined_member_waits_and_rejoins(cluster, processes, tmp_path):
    log_path = tmp_path / "joined.log"
    joined = start_joined_member(processes, cluster.address, log_path)
    member = wait_for_member_with_pid(cluster, joined.pid)
    forked_processes = handles(m.pid for m in cluster.cluster().members if m.forked)
    master = psutil.Process(cluster.master_pid)
    # When the master hangs long enough for every member to notice (the forked ones exit: the
    # master resumed before they all noticed would find some of them still there)
    master.suspend()
    try:
        wait_until(lambda: "master lost" in log_path.read_text(), MASTER_SILENCE_FACTOR * TIMEOUT_S + MARGIN_S,
                   "the joined member never noticed the paused master")
        wait_until(lambda: not alive(forked_processes), MASTER_SILENCE_FACTOR * TIMEOUT_S + MARGIN_S,
                   lambda: f"forked members still running under a paused master: {alive(forked_processes)}")
    finally:
        master.resume()
    # Then the joined member did not exit, and is a member again once the master is back: welcomed
    # in a new session (it dropped its executions), and listed (the master's old record of it is gone)
    assert joined.poll() is None
    elapsed = timed_wait(lambda: log_path.read_text().count("joined the cluster") == 2
                         and [m.uuid for m in cluster.cluster().members] == [member.uuid], JOIN_TIMEOUT_S,
                         lambda: f"members after the pause: {members_line(cluster)}; member log:\n"
                                 f"{log_path.read_text()[-2000:]}")
    report("master SIGCONT -> joined member back", elapsed)
    # and what it tells the master reaches it: its job channel, closed when the master was lost, is open again
    list_job_round_trip(cluster, "after-rejoin")
    assert connections_to_master(cluster, joined.pid) == 2
    # and it stays one: no spurious removal once it is back
    version = cluster.cluster().membership_version
    time_window_end = time.monotonic() + 2 * TIMEOUT_S
    while time.monotonic() < time_window_end:  # observing for a while is the point here, not waiting
        state = cluster.cluster()
        assert [m.uuid for m in state.members] == [member.uuid], f"membership changed: {members_line(cluster)}"
        time.sleep(INTERVAL_MS / 1000)
    assert cluster.cluster().membership_version == version
    # and SIGTERM still makes it leave gracefully
    joined.terminate()
    assert joined.wait(timeout=10) == 0
    assert removal_reason(cluster, member.uuid).startswith("it left:"), master_log(cluster)[-2000:]
