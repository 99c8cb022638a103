"""Nobody without the cluster's key runs code or reads data: every socket is CURVE-authenticated.

Real clusters and real peers: the CLI without a key or with another cluster's, a member
that tries to join without one, and raw ZeroMQ peers that send a pickle which would
create a file if anything unpickled it, to the master's control port and to a member's
data port.
"""
import os
import pickle
import stat
import subprocess
import sys
import time

import pytest
import zmq
from zmq.utils.monitor import parse_monitor_message

import jetmq
from jetmq import protocol as p
from jetmq.member.engine.dataplane import HEADER, KIND_BATCH
from jetmq.testing import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

#: A refused client must hear why within this (not at its request's 4 s timeout).
REFUSAL_S = 3.0


class CreatesAFile:
    """Unpickling this creates ``path``: the proof that someone decoded what a stranger sent."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def jet(cluster, *args, key_file=None, env=None):
    environment = {**os.environ, **(env or {})}
    environment.pop("JET_KEY_FILE", None)
    command = [sys.executable, "-m", "jetmq.cli.jet", "--addresses", cluster.address]
    if key_file is not None:
        command += ["--key-file", str(key_file)]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=30, env=environment)


def test_the_data_dir_is_the_users_alone_and_the_key_file_is_0600(cluster):
    assert stat.S_IMODE(cluster.data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(cluster.key_file.stat().st_mode) == 0o600
    assert "secret" in cluster.key_file.read_text()
    # and the key appears in no command line and no log
    secret = [line for line in cluster.key_file.read_text().splitlines() if line.startswith("secret")][0].split()[1]
    logs = "".join(path.read_text() for path in (cluster.data_dir / "logs").glob("*.log"))
    assert secret not in logs
    import psutil
    master = psutil.Process(cluster.master_pid)
    for process in [master, *master.children(recursive=True)]:
        assert secret not in " ".join(process.cmdline())


def test_clients_without_the_key_or_with_another_clusters_are_refused_and_the_cluster_serves_on(cluster, tmp_path):
    with jetmq.Cluster(members=1) as other:
        for key_file, words in ((None, "requires its key"), ("none", "requires its key"),
                                (other.key_file, "did not accept the key given")):
            start = time.monotonic()
            result = jet(cluster, "cluster", key_file=key_file)
            took = time.monotonic() - start
            assert result.returncode == 1, result.stdout
            assert result.stderr.startswith(f"ERROR: cannot talk to the jetmq cluster at {cluster.address}: ")
            assert words in result.stderr, result.stderr
            assert took < REFUSAL_S + 2  # the process's start-up included
    # and its own clients are served as before
    result = jet(cluster, "cluster", key_file=cluster.key_file)
    assert result.returncode == 0 and "Size: 2" in result.stdout, result.stderr
    assert cluster.cluster().size == 2
    # and the master logged the refusal, once for the host (its peers' ports are new each time;
    # a peer that closes before the master reads its address is "an unknown address")
    refusals = [line for line in (cluster.data_dir / "logs" / "master.log").read_text().splitlines()
                if "refused a connection from" in line]
    assert any("from 127.0.0.1:" in line for line in refusals), refusals
    assert any("it has no key" in line for line in refusals), refusals
    assert len(refusals) <= 2, refusals


def test_a_member_without_the_key_cannot_join_and_says_why(cluster, processes):
    for key_file in ("none",):
        member = processes.start_cli("start", "--join", cluster.address, "--key-file", key_file,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert member.wait(timeout=20) == 4
        assert "the cluster requires its key" in member.stderr.read()
    assert cluster.cluster().size == 2


def test_raw_peers_without_the_key_get_nothing_decoded(cluster, tmp_path):
    # Given a pickle that creates a file when loaded, and raw peers with no key or a random one
    proof = tmp_path / "created-by-a-stranger"
    dag = pickle.dumps(CreatesAFile(proof))
    context = zmq.Context()
    try:
        for server, frames in ((cluster.address, p.encode(p.SubmitJob({}, dag, False), 1)),
                               (cluster.cluster().members[0].address,
                                [HEADER.pack(KIND_BATCH, 1, 0, 1, 1), pickle.dumps([CreatesAFile(proof)])])):
            for keyed in (False, True):
                peer = context.socket(zmq.DEALER)
                peer.setsockopt(zmq.LINGER, 0)
                if keyed:  # a key pair of its own, and a guess at the server's key
                    public, secret = zmq.curve_keypair()
                    peer.curve_secretkey, peer.curve_publickey, peer.curve_serverkey = secret, public, public
                monitor = peer.get_monitor_socket()
                peer.connect(f"tcp://{server}")
                peer.send_multipart(frames)
                # When the handshake has been tried and refused
                wait_until(lambda: _handshake_failed(monitor), 15, f"no refused handshake with {server}")
                peer.disable_monitor()
                monitor.close()
                peer.close()
    finally:
        context.destroy(linger=0)
    # Then nothing was decoded, let alone unpickled, and the cluster serves on
    assert not proof.exists()
    assert cluster.cluster().size == 2 and cluster.get_jobs() == []


def _handshake_failed(monitor) -> bool:
    while monitor.poll(10):
        event = parse_monitor_message(monitor.recv_multipart())["event"]
        if event in (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
                     zmq.EVENT_HANDSHAKE_FAILED_AUTH):
            return True
    return False


def test_no_auth_is_refused_on_an_address_other_hosts_reach(run_cli, free_port, tmp_path):
    result = run_cli("start", "--no-auth", "--bind", "0.0.0.0", "--port", free_port(), "-m", "1",
                     "--data-dir", tmp_path / "data")
    assert result.returncode != 0
    assert "--no-auth needs a loopback --bind" in result.stderr and "authentication" in result.stderr


def test_a_cluster_without_auth_on_loopback_serves_clients_without_a_key(processes, run_cli, free_port, tmp_path):
    port = free_port()
    started = run_cli("start", "--daemon", "--no-auth", "-m", "1", "--port", port, "--data-dir", tmp_path / "data")
    assert started.returncode == 0, started.stderr
    processes.add(int(started.stdout.split("master pid ")[1].split(",")[0]))
    assert not (tmp_path / "data" / "cluster.key").exists()
    result = run_cli("jet", "--addresses", f"127.0.0.1:{port}", "--key-file", "none", "cluster")
    assert result.returncode == 0 and "Size: 1" in result.stdout, result.stderr
    assert run_cli("stop", "--addresses", f"127.0.0.1:{port}", "--key-file", "none").returncode == 0
