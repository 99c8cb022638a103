"""A cluster across hosts: a master on one network namespace, members on two others.

Each host is a namespace of its own on a bridge, with its own address and hostname
(tests/integration/hosts.py); the test process is a client through the bridge. The
master binds 0.0.0.0 and forks one member; the others join with a bare
`jet-start --join HOST:PORT` and find their own address. Skipped only where
namespaces cannot be made (not root); CI is root.
"""
import collections
import re
import subprocess
import sys
import time

import pytest

import jetmq
from jetmq import JobConfig, JobStatus, ProcessingGuarantee
from jetmq import AggregateOperations as ops
from jetmq.pipeline import Pipeline, Sinks, Sources
from jetmq.testing import sequence_dag, verify_sequences, wait_until
from tests.integration.hosts import ROOT, make_network, skip_unless_possible

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

PORT = 5701
HEARTBEATS = ("--heartbeat-interval-ms", "200", "--heartbeat-timeout-ms", "1500")
WAIT_S = 60


@pytest.fixture
def network():
    skip_unless_possible()
    net = make_network()
    try:
        yield net
    finally:
        net.remove()


class ThreeHosts:
    """A master (and one forked member) on host A, a joined member on B and on C."""

    def __init__(self, network, processes, tmp_path, master_args=(), members=1, unmounted=()):
        self.a, self.b, self.c = (network.add_host(name) for name in ("hosta", "hostb", "hostc"))
        self.processes, self.tmp_path = processes, tmp_path
        self.master = processes.popen(self.a.jetmq("start", "--bind", "0.0.0.0", "--port", str(PORT),
                                                   "-m", str(members), "--data-dir", str(tmp_path / "a"),
                                                   "--scale-up-delay-ms", "1000", *HEARTBEATS, *master_args),
                                      cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.address = f"{self.a.address}:{PORT}"
        made = tmp_path / "a" / "cluster.key"  # made by the master as it starts
        wait_until(lambda: made.exists() and made.read_text().count("\n") == 3, WAIT_S,
                   "the master on host A made no key")
        # the key handed to the other hosts, as an operator would copy it (outside A's data dir)
        self.key_file = tmp_path / "cluster.key"
        self.key_file.write_text(made.read_text())
        self.key_file.chmod(0o600)
        self.client = jetmq.JetClient(self.address, key_file=self.key_file)
        wait_until(self._answers, WAIT_S, "the master on host A never answered")
        # hosts in ``unmounted`` do not see the master's data dir (its snapshot store among it)
        self.joined = {host.name: self.join(host, hide=(str(tmp_path / "a"),) if host.name.endswith(unmounted) else ())
                       for host in (self.b, self.c)}
        wait_until(lambda: self.client.cluster().size == members + 2, WAIT_S,
                   lambda: f"members: {self.client.cluster().members}")

    def _answers(self) -> bool:
        try:
            self.client.cluster()
            return True
        except jetmq.JetError:
            return False

    def join(self, host, hide=()):
        return self.processes.popen(host.jetmq("start", "--join", self.address, "--key-file", str(self.key_file),
                                               "--data-dir", str(self.tmp_path / host.name), *HEARTBEATS, hide=hide),
                                    cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def jet(self, *args, host=None):
        options = ("--addresses", self.address, "--key-file", str(self.key_file))
        command = (host.jetmq("jet", *options, *args) if host is not None else
                   [sys.executable, "-m", "jetmq.cli.jet", *options, *args])
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)

    def close(self):
        self.client.close()


@pytest.fixture
def hosts(network, processes, tmp_path):
    cluster = ThreeHosts(network, processes, tmp_path)
    yield cluster
    cluster.close()


def test_members_advertise_their_own_hosts_address_and_a_word_count_spans_the_hosts(hosts, tmp_path):
    # Then `jet cluster` shows each member at the address of its own host
    result = hosts.jet("cluster")
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()[5:]
    addresses = sorted(row.split()[0].rsplit(":", 1)[0] for row in rows)
    assert addresses == sorted([hosts.a.address, hosts.b.address, hosts.c.address]), result.stdout
    members = hosts.client.cluster().members
    assert {m.host for m in members} == {hosts.a.name, hosts.b.name, hosts.c.name}
    # When a word count runs over files that every host sees
    books = tmp_path / "books"
    books.mkdir()
    words = [f"word{i % 97}" for i in range(60_000)]
    for part in range(6):
        (books / f"part-{part}.txt").write_text("\n".join(" ".join(words[i:i + 10])
                                                          for i in range(part * 10_000, (part + 1) * 10_000, 10)))
    p = Pipeline()
    (p.read_from(Sources.files(str(books)))
      .flat_map(lambda line: line.split())
      .grouping_key(lambda word: word)
      .aggregate(ops.counting())
      .write_to(Sinks.map("word-counts")))
    job = hosts.client.new_job(p, JobConfig(name="word-count"))
    job.join(timeout=WAIT_S)
    # Then the counts are exact, and the job ran on all three hosts
    assert hosts.client.get_map("word-counts") == dict(collections.Counter(words))
    master_log = (tmp_path / "a" / "logs" / "master.log").read_text()
    assert re.search(rf"job {job.id_string} \(word-count\): NOT_RUNNING -> STARTING: execution \S+ on 3 members",
                     master_log), master_log[-3000:]


def test_exactly_once_output_survives_a_host_link_going_down_and_a_lossy_link(hosts):
    # Given an exactly-once streaming job on the three hosts
    config = JobConfig(name="across-hosts", processing_guarantee=ProcessingGuarantee.EXACTLY_ONCE,
                       snapshot_interval_ms=300)
    job = hosts.client.new_job(sequence_dag("multi-host-sequences", keys=10, per_second=2000), config)
    wait_until(lambda: job.metrics()["last_snapshot_id"] >= 1, WAIT_S, "no snapshot committed")
    # When host C's link delays and loses packets, and host B's link goes down, then comes back
    impairment = hosts.c.impair("delay 30ms 10ms loss 3%")
    print(f"[measured] host C's link: {impairment}")
    hosts.b.link_down()
    try:
        wait_until(lambda: hosts.client.cluster().size == 2, WAIT_S, "host B was never counted gone")
        wait_until(lambda: job.status is JobStatus.RUNNING and job.metrics()["executions_started"] >= 2, WAIT_S,
                   lambda: f"the job did not go on without host B: {job.status}")
        restarted = job.metrics()["last_snapshot_id"]
        wait_until(lambda: job.metrics()["last_snapshot_id"] > restarted + 2, WAIT_S, "no snapshots without B")
    finally:
        hosts.b.link_up()
    wait_until(lambda: hosts.client.cluster().size == 3, WAIT_S, "host B did not rejoin")
    wait_until(lambda: len(job.metrics()["execution_members"]) == 3 and job.status is JobStatus.RUNNING, WAIT_S,
               lambda: f"the job did not scale back onto host B: {job.metrics()}")
    hosts.c.heal()
    last = job.metrics()["last_snapshot_id"]
    wait_until(lambda: job.metrics()["last_snapshot_id"] > last + 2, WAIT_S, "no snapshots on three hosts again")
    job.cancel()
    wait_until(lambda: job.status is JobStatus.FAILED, WAIT_S, "the job did not end")
    # Then every key's sequence came through exactly once
    verdict = verify_sequences(hosts.client.get_list("multi-host-sequences"))
    assert verdict.items > 2_000 and verdict.exactly_once, verdict


def test_the_masters_side_of_a_split_without_a_quorum_runs_no_jobs(hosts):
    # Given a split-brain-protected job on three members (quorum 2)
    job = hosts.client.new_job(sequence_dag("protected-sequences", keys=5, per_second=500),
                               JobConfig(name="protected", split_brain_protection=True,
                                         processing_guarantee=ProcessingGuarantee.EXACTLY_ONCE,
                                         snapshot_interval_ms=300))
    wait_until(lambda: job.status is JobStatus.RUNNING, WAIT_S, "the job did not start")
    # When host A (the master and one member) is cut off from B and C
    hosts.a.link_down()
    try:
        # Then, seen from host A, the job waits for its quorum instead of running on one member
        def status_on_a():
            result = hosts.jet("list-jobs", host=hosts.a)
            return re.search(r"(NOT_RUNNING|STARTING|RUNNING|COMPLETING)\s+\S+\s+protected", result.stdout)
        wait_until(lambda: (m := status_on_a()) and m.group(1) == "NOT_RUNNING", WAIT_S,
                   lambda: f"list-jobs on host A: {hosts.jet('list-jobs', host=hosts.a).stdout}")
        time.sleep(2)  # the window in which a wrong master would start it (nothing to wait for)
        assert status_on_a().group(1) == "NOT_RUNNING"
    finally:
        hosts.a.link_up()
    # and once the hosts see each other again, it runs on a quorum
    wait_until(lambda: hosts.client.cluster().size == 3, WAIT_S, "B and C did not rejoin")
    wait_until(lambda: job.status is JobStatus.RUNNING, WAIT_S, lambda: f"the job is {job.status}")
    job.cancel()


def test_a_host_that_does_not_mount_the_store_snapshots_and_restores_through_the_master(network, processes,
                                                                                         tmp_path):
    # Given three hosts, of which B does not see the master's data dir (nor its snapshot store)
    hosts = ThreeHosts(network, processes, tmp_path, unmounted=("hostb",))
    try:
        member_b = next(m for m in hosts.client.cluster().members if m.host == hosts.b.name)
        log_b = tmp_path / hosts.b.name / "logs" / f"member-{member_b.uuid[:8]}.log"
        # the member logs how it reaches the store when it handles the master's Welcome, which
        # may be after the master already counts it in the cluster
        wait_until(lambda: "is not mounted here: through the master's store service" in log_b.read_text(), WAIT_S,
                   lambda: f"member B never said it reaches the store through the master:\n{log_b.read_text()}")
        # When an exactly-once job snapshots, and then a member on C is killed and the job restores
        config = JobConfig(name="store-service", processing_guarantee=ProcessingGuarantee.EXACTLY_ONCE,
                           snapshot_interval_ms=300)
        job = hosts.client.new_job(sequence_dag("store-service-sequences", keys=10, per_second=2000), config)
        wait_until(lambda: job.metrics()["last_snapshot_id"] >= 2, WAIT_S, "no snapshot committed")
        hosts.joined[hosts.c.name].kill()
        wait_until(lambda: job.metrics()["executions_started"] >= 2 and job.status is JobStatus.RUNNING, WAIT_S,
                   lambda: f"the job did not restart: {job.status}")
        last = job.metrics()["last_snapshot_id"]
        wait_until(lambda: job.metrics()["last_snapshot_id"] > last + 2, WAIT_S, "no snapshot after the restore")
        job.cancel()
        wait_until(lambda: job.status is JobStatus.FAILED, WAIT_S, "the job did not end")
        # Then B wrote its state through the master's store service, and read it back through it
        stats = hosts.client.master_stats()
        assert stats["store_service_bytes_written"] > 0 and stats["store_service_bytes_read"] > 0, stats
        # (while no state crossed the master's control loop)
        assert stats["largest_message_to_members"] < 100_000, stats
        # and the output is exactly once
        verdict = verify_sequences(hosts.client.get_list("store-service-sequences"))
        assert verdict.items > 1_000 and verdict.exactly_once, verdict
    finally:
        hosts.close()
