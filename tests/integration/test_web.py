"""The master's HTTP server on real clusters: Prometheus's /metrics, the JSON API, the port
and bind options, the token, and a master that stays responsive while it is scraped.

Clusters here ask for a free --web-port; every other test's cluster runs without one.
"""
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict

import pytest
from prometheus_client.parser import text_string_to_metric_families

import jetmq
from jetmq import JobConfig, clusterkey
from jetmq import protocol as p
from jetmq.core import DAG, Edge, NoopProcessor, Processor
from jetmq.requester import Requester
from jetmq.testing import wait_until
from jetmq.web.auth import token_of

from jetmq.config import HEARTBEAT_TIMEOUT_MS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

WAIT_S = 30
INTERVAL_S = 0.5
ITEMS = 500


class CountThenIdle(Processor):
    """Processor 0 emits 0..count-1, then the job idles (RUNNING, its metrics steady)."""

    def __init__(self, count: int):
        self.count = count
        self.next = 0

    def init_hook(self):
        if self.context.global_index != 0:
            self.next = self.count

    def complete(self):
        if self.next < self.count:
            self.next += self.outbox.offer_many(range(self.next, self.count))
        return False

    def next_deadline(self):
        return time.monotonic() + 1.0


def idle_dag(count: int = ITEMS) -> DAG:
    dag = DAG()
    source = dag.new_vertex("counted-source", lambda: CountThenIdle(count), local_parallelism=1)
    sink = dag.new_vertex("noop-sink", NoopProcessor, local_parallelism=2)
    dag.edge(Edge.between(source, sink).distributed().partitioned(abs))  # items go to both members
    return dag


@pytest.fixture
def web_cluster(processes, monkeypatch, free_port):
    """A 2-member jetmq.Cluster serving HTTP on a free port (``.web_port``), with the default
    heartbeats: on a loaded machine, fast ones could lose a member and restart the job."""
    port = free_port()
    instance = jetmq.Cluster(members=2, metrics_collection_interval=INTERVAL_S, web_port=port)
    instance.start()
    instance.web_port = port
    monkeypatch.setenv("JET_KEY_FILE", str(instance.key_file))
    try:
        processes.add_cluster(instance)
        yield instance
    finally:
        instance.stop()


def get(port: int, path: str, headers: dict | None = None, host: str = "127.0.0.1"):
    """(status, headers, body) of GET http://host:port/path."""
    request = urllib.request.Request(f"http://{host}:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def get_json(port: int, path: str):
    status, headers, body = get(port, path)
    assert status == 200, (path, status, body)
    assert headers["Content-Type"] == "application/json"
    return json.loads(body)


def jet_json(cluster, *args) -> dict:
    result = subprocess.run([sys.executable, "-m", "jetmq.cli.jet", "--addresses", cluster.address,
                             "--key-file", str(cluster.key_file), *args, "--json"],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def scrape(port: int) -> dict:
    """The families of one scrape of /metrics, by name."""
    status, headers, body = get(port, "/metrics")
    assert status == 200, body
    assert headers["Content-Type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(body.decode())}


def samples(family) -> dict:
    """{frozenset of label items: value} of a family's samples (a counter's ``_total`` ones)."""
    return {frozenset(s.labels.items()): s.value for s in family.samples if not s.name.endswith("_created")}


def per_vertex_member(metrics, name: str) -> dict:
    """{(vertex, member): sum} of a metric in a JobMetrics (items only: no snapshot ordinal)."""
    sums = defaultdict(int)
    for m in metrics.get(name):
        if m.tag("ordinal") != "snapshot" and m.tag("user") is None:
            sums[m.tag("vertex"), m.tag("member")] += m.value
    return dict(sums)


COMPARED = (("jetmq_vertex_received_count", "receivedCount"), ("jetmq_vertex_emitted_count", "emittedCount"),
            ("jetmq_vertex_queues_capacity", "queuesCapacity"),
            ("jetmq_vertex_distributed_items_out", "distributedItemsOut"))


def settled(metrics) -> bool:
    """Every item emitted, sent and received: the job's counts no longer change. (A member's
    report may show its local sink's share before its sender's last batch went out.)"""
    total = lambda name: sum(per_vertex_member(metrics, name).values())  # noqa: E731
    return (total("emittedCount") == ITEMS and total("receivedCount") == ITEMS
            and 0 < total("distributedItemsOut") == total("distributedItemsIn"))


def test_metrics_has_the_cluster_members_jobs_and_vertices_of_a_running_job(web_cluster):
    cluster, port = web_cluster, web_cluster.web_port
    job = cluster.new_job(idle_dag(), JobConfig(name="idle"))
    members = {m.uuid: m for m in cluster.cluster().members}
    labels = {"job": job.id_string, "job_name": "idle"}
    metrics = wait_until(lambda: (m := job.get_metrics()) and settled(m) and m, WAIT_S,
                         lambda: f"get_metrics() never showed every item through: {job.get_metrics()}")
    # the per-vertex samples are the job's metrics, summed per (vertex, member): once the
    # counts have settled, a scrape (its answers are up to a second old) shows the same
    expected = {family_name: {frozenset({**labels, "vertex": vertex, "member": member}.items()): value
                              for (vertex, member), value in per_vertex_member(metrics, metric).items()}
                for family_name, metric in COMPARED}
    assert all(expected.values())
    last = {}

    def matching():
        last["families"] = families = scrape(port)
        return all(name in families and samples(families[name]) == want for name, want in expected.items()) \
            and families
    families = wait_until(matching, WAIT_S, lambda: f"the vertex samples of /metrics never matched get_metrics(): "
                          f"{ {n: samples(last['families'][n]) for n in expected if n in last['families']} }")
    for family_name, _ in COMPARED:
        assert families[family_name].type == ("gauge" if "queues" in family_name else "counter")

    assert samples(families["jetmq_members"]) == {frozenset(): 2}
    assert {dict(k)["member"]: dict(k) for k in samples(families["jetmq_member_info"])} == {
        uuid: {"member": uuid, "address": m.address, "host": m.host, "pid": str(m.pid), "forked": "true"}
        for uuid, m in members.items()}
    for name in ("jetmq_member_heartbeat_age_seconds", "jetmq_member_cpu_percent", "jetmq_member_rss_bytes"):
        assert {dict(k)["member"] for k in samples(families[name])} == set(members), name
    assert all(0 <= v < HEARTBEAT_TIMEOUT_MS / 1000
               for v in samples(families["jetmq_member_heartbeat_age_seconds"]).values())
    assert all(v > 1_000_000 for v in samples(families["jetmq_member_rss_bytes"]).values())
    assert samples(families["jetmq_jobs"])[frozenset({("status", "RUNNING")})] == 1
    assert samples(families["jetmq_jobs"])[frozenset({("status", "COMPLETED")})] == 0
    assert samples(families["jetmq_job_info"]) == {frozenset({**labels, "status": "RUNNING"}.items()): 1}
    assert samples(families["jetmq_job_restarts"]) == {frozenset(labels.items()): 0}
    emitted = {dict(k)["vertex"]: 0 for k in samples(families["jetmq_vertex_emitted_count"])}
    for key, value in samples(families["jetmq_vertex_emitted_count"]).items():
        emitted[dict(key)["vertex"]] += value
    assert emitted == {"counted-source": ITEMS}  # a sink emits nothing: it has no such measurement
    assert {dict(k)["member"] for k in samples(families["jetmq_vertex_received_count"])} == set(members)


def batch_outline_dag() -> DAG:
    from jetmq.core import ItemsSourceProcessor

    dag = DAG()
    source = dag.new_vertex("items", lambda: ItemsSourceProcessor(range(100)), local_parallelism=1)
    sink = dag.new_vertex("sink", NoopProcessor, local_parallelism=2)
    dag.edge(Edge.between(source, sink).distributed().partitioned(abs))
    return dag


def test_the_api_serves_what_the_cli_prints(web_cluster):
    cluster, port = web_cluster, web_cluster.web_port
    batch = cluster.new_job(batch_outline_dag(), JobConfig(name="batch", store_metrics_after_job_completion=True))
    batch.join()
    running = cluster.new_job(idle_dag(), JobConfig(name="idle"))
    wait_until(lambda: running.status is jetmq.JobStatus.RUNNING, WAIT_S, "the streaming job never ran")

    assert get_json(port, "/api/jobs") == jet_json(cluster, "list-jobs", "-a")
    described = jet_json(cluster, "describe", "batch")
    assert get_json(port, f"/api/jobs/{batch.id_string}") == described
    assert get_json(port, "/api/jobs/batch") == described
    assert described["dag"] == {
        "vertices": [{"name": "items", "local_parallelism": 1}, {"name": "sink", "local_parallelism": 2}],
        "edges": [{"from": "items", "to": "sink", "from_ordinal": 0, "to_ordinal": 0, "routing": "partitioned",
                   "distributed": True, "priority": 0}]}
    assert [v["name"] for v in described["metrics"]["vertices"]] == ["items", "sink"]

    served = get_json(port, "/api/cluster")
    printed = jet_json(cluster, "cluster")
    extra = {"cpu_percent", "rss_bytes", "heartbeat_age_ms", "stalled_ms"}
    for member in served["members"]:
        assert set(member) >= extra
        assert member["rss_bytes"] > 1_000_000 and member["cpu_percent"] >= 0
        assert 0 <= member["heartbeat_age_ms"] < HEARTBEAT_TIMEOUT_MS
    master = served.pop("master")
    assert master["pid"] == cluster.master_pid and master["rss_bytes"] > 1_000_000
    assert {**served, "members": [{k: v for k, v in m.items() if k not in extra} for m in served["members"]]} \
        == printed

    # a job's logs: the lines `jet logs --tail` prints
    logs = get_json(port, "/api/jobs/batch/logs?tail=3")
    printed_logs = subprocess.run([sys.executable, "-m", "jetmq.cli.jet", "--addresses", cluster.address, "--key-file",
                                   str(cluster.key_file), "logs", "--tail", "3", "batch"], stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=60)
    assert printed_logs.returncode == 0, printed_logs.stderr
    assert logs["status"] == "COMPLETED" and logs["lines"], logs
    assert [f"member={line['member'][:8]} {line['text']}" for line in logs["lines"]] == \
        [line.split(" ", 2)[2] for line in printed_logs.stdout.splitlines()]
    status, _, _ = get(port, "/api/jobs/batch/logs?tail=many")
    assert status == 400

    for path in ("/api/jobs/no-such-job", "/api/jobs/no-such-job/logs", "/api/nothing", "/no-such-file.js", "/static/../server.py"):
        status, headers, body = get(port, path)
        assert (status, headers["Content-Type"]) == (404, "application/json"), path
        assert "error" in json.loads(body)
    status, headers, body = get(port, "/")
    assert (status, headers["Content-Type"]) == (200, "text/html; charset=utf-8")

    # server-sent events: a "changed" tick
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/events", timeout=10) as events:
        assert events.headers["Content-Type"] == "text/event-stream"
        assert events.readline() == b"event: changed\n"
        assert json.loads(events.readline().decode().removeprefix("data: "))["time"] > 0


def test_the_master_stays_responsive_while_the_server_is_scraped(web_cluster):
    cluster, port = web_cluster, web_cluster.web_port
    job = cluster.new_job(idle_dag(), JobConfig(name="idle"))
    wait_until(lambda: job.status is jetmq.JobStatus.RUNNING, WAIT_S, "the job never ran")
    requester = Requester([cluster.address], key=clusterkey.load(cluster.key_file))

    def latencies(count: int) -> list[float]:
        found = []
        for _ in range(count):
            started = time.monotonic()
            requester.request(p.GetJobs(None))
            found.append(time.monotonic() - started)
        return found

    stop = threading.Event()
    scrapes = [0]

    def scrape_loop(path):
        while not stop.is_set():
            assert get(port, path)[0] == 200
            scrapes[0] += 1
    threads = [threading.Thread(target=scrape_loop, args=(path,), daemon=True)
               for path in ("/metrics", "/api/cluster", f"/api/jobs/{job.id_string}")]
    try:
        latencies(5)
        for thread in threads:
            thread.start()
        wait_until(lambda: scrapes[0] >= 30, WAIT_S, "the scrapers did not get going")
        under_load = latencies(50)
        cli_started = time.monotonic()
        assert jet_json(cluster, "list-jobs")["jobs"][0]["name"] == "idle"
        cli_s = time.monotonic() - cli_started
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        requester.close()
    assert scrapes[0] >= 60, "the scrapers barely ran: the test measured no load"
    # a request costs the master a millisecond or two; the server in its process must not make it wait
    assert statistics.median(under_load) < 0.05, under_load
    assert max(under_load) < 0.5, under_load
    assert cli_s < 10, cli_s


# --------------------------------------------------------------------------------------
# The port and bind options of jet-start


def start_command(data_dir, *args) -> list[str]:
    """jet-start --daemon of a 2-member master on a free control port (no --web-port of the
    test harness added: these tests say what they want)."""
    return [sys.executable, "-m", "jetmq.cli.start", "-m", "2", "--port", "0", "--data-dir", str(data_dir),
            "--heartbeat-interval-ms", "100", "--heartbeat-timeout-ms", "1000", "--daemon", *map(str, args)]


def started(processes, data_dir, *args) -> subprocess.CompletedProcess:
    result = subprocess.run(start_command(data_dir, *args), stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=90)
    pid_file = data_dir / "master.pid"
    if pid_file.exists():
        processes.add(int(pid_file.read_text().split()[0]))
    return result


def stop(data_dir) -> None:
    address = next(line for line in (data_dir / "logs" / "master.log").read_text().splitlines()
                   if " listening on " in line).split(" listening on ")[1].split(",")[0]
    subprocess.run([sys.executable, "-m", "jetmq.cli.stop", "--addresses", address, "--key-file",
                    str(data_dir / "cluster.key")], capture_output=True, timeout=60, check=True)


def hold_port(port: int, host: str = "127.0.0.1") -> socket.socket:
    holder = socket.socket()
    holder.bind((host, port))
    holder.listen()
    return holder


def test_a_taken_default_port_is_a_warning_and_the_cluster_works(processes, tmp_path, run_cli):
    from jetmq.config import DEFAULT_WEB_PORT

    try:
        holder = hold_port(DEFAULT_WEB_PORT)
    except OSError:  # someone else holds it: taken all the same
        holder = None
    data_dir = tmp_path / "data"
    try:
        result = started(processes, data_dir)
        assert result.returncode == 0, result.stderr
        assert "dashboard" not in result.stdout
        log = (data_dir / "logs" / "master.log").read_text()
        assert f"cannot serve HTTP on 127.0.0.1:{DEFAULT_WEB_PORT}" in log and "starting without the dashboard" in log
        address = result.stdout.split(" is ready at ")[1].split(":")[0:2]
        cluster = run_cli("jet", "--addresses", ":".join(address), "--key-file", data_dir / "cluster.key",
                          "cluster")
        assert cluster.returncode == 0 and "Size: 2" in cluster.stdout, cluster.stdout + cluster.stderr
    finally:
        if holder is not None:
            holder.close()
    stop(data_dir)


@pytest.mark.parametrize("daemon", [True, False], ids=["daemon", "foreground"])
def test_a_taken_explicit_port_is_an_error(processes, tmp_path, free_port, daemon):
    port = free_port()
    holder = hold_port(port)
    try:
        command = start_command(tmp_path / "data", "--web-port", port)
        if not daemon:
            command.remove("--daemon")
        result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90)
    finally:
        holder.close()
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith(f"ERROR: cannot serve HTTP on 127.0.0.1:{port}: "), result.stderr
    assert "--web-port" in result.stderr
    assert not (tmp_path / "data" / "master.pid").exists()


def test_a_non_loopback_bind_needs_the_token(processes, tmp_path, free_port):
    port, data_dir = free_port(), tmp_path / "data"
    result = started(processes, data_dir, "--web-port", port, "--web-bind", "0.0.0.0")
    assert result.returncode == 0, result.stderr
    token = token_of(clusterkey.load(data_dir / "cluster.key"))
    url = f"http://127.0.0.1:{port}/?token={token}"
    assert f"dashboard and /metrics at {url}" in result.stdout
    assert (data_dir / "web.url").read_text().strip() == url
    try:
        for path in ("/api/cluster", "/metrics", "/"):
            assert get(port, path)[0] == 401, path
            assert get(port, path, {"Authorization": f"Bearer {token}"})[0] == 200, path
            assert get(port, path, {"Authorization": "Bearer " + "0" * len(token)})[0] == 401, path
        assert get(port, "/api/cluster?token=wrong")[0] == 401
        status, headers, _ = get(port, f"/api/cluster?token={token}")
        assert status == 200
        cookie = headers["Set-Cookie"].split(";")[0]
        assert cookie == f"jetmq_token={token}"
        assert get(port, "/api/jobs", {"Cookie": cookie})[0] == 200
        assert get(port, "/api/jobs", {"Cookie": "jetmq_token=wrong"})[0] == 401
    finally:
        stop(data_dir)


def test_without_auth_a_non_loopback_web_bind_is_refused(processes, tmp_path, free_port):
    result = started(processes, tmp_path / "data", "--no-auth", "--web-port", free_port(), "--web-bind", "0.0.0.0")
    assert result.returncode == 2
    assert result.stderr.startswith("ERROR: --no-auth needs a loopback --web-bind, not 0.0.0.0"), result.stderr
