"""The HTTP server's parts without a cluster: the token, /metrics from given answers of a
master, the routes, and the options' checks. A stand-in source answers as a master would."""
import json
import os
import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from jetmq import protocol as p
from jetmq.config import ClusterConfig
from jetmq.core.metrics_context import encode_report
from jetmq.errors import ClusterUnreachableError
from jetmq.ids import id_to_string
from jetmq.transport.security import new_keypair
from jetmq.web import auth
from jetmq.web.documents import NoSuchJob, cluster_reply_document
from jetmq.web.prometheus import NO_WATERMARK, render, snake
from jetmq.web.server import WebServer, WebStartError
from jetmq.web.source import ResourceUsage

pytestmark = pytest.mark.timeout(30)

T0 = 1_764_000_000_000
RUNNING_ID, DONE_ID = 0x1062_62BD_F040_5A8A, 0x1062_62BD_F040_5A8B
UUID_1, UUID_2 = "01a7bfab-1d32-4d4a-9ce5-7bcfe6b5a4bb", "5a5b4aa2-6203-41ba-8721-8aa44afad2e2"
HOST = socket.gethostname()


def summary(job_id, name, status, executions_started=1) -> p.JobSummary:
    return p.JobSummary(job_id, name, status, T0, None if status == "RUNNING" else T0 + 5, None,
                        executions_started, (), -1, -1, ())


def report(member: str, groups: list) -> bytes:
    return encode_report(T0 + 1000, {"job": id_to_string(RUNNING_ID), "member": member, "exec": "e"}, groups)


PROC = {"vertex": "map", "procType": "MapP"}
REPORTS = [
    report(UUID_1, [
        [{**PROC, "proc": "0"}, [["receivedCount", "count", 10, {"ordinal": "0"}],
                                 ["receivedCount", "count", 5, {"ordinal": "1"}],
                                 ["emittedCount", "count", 15, {"ordinal": "0"}],
                                 ["emittedCount", "count", 99, {"ordinal": "snapshot"}],
                                 ["queuesSize", "count", 3, None], ["queuesCapacity", "count", 1024, None],
                                 ["coalescedWm", "ms", 500, None], ["coalescedWm", "ms", 1, {"ordinal": "0"}],
                                 ["topObservedWm", "ms", 700, None],
                                 ["lastForwardedWm", "ms", NO_WATERMARK, None],
                                 ["lines", "count", 4, {"user": "true"}]]],
        [{**PROC, "proc": "1"}, [["receivedCount", "count", 20, {"ordinal": "0"}],
                                 ["coalescedWm", "ms", 400, None], ["topObservedWm", "ms", 800, None],
                                 ["lastForwardedWm", "ms", NO_WATERMARK, None],
                                 ["lines", "count", 6, {"user": "true"}]]],
        [{"vertex": "map"}, [["distributedItemsOut", "count", 7, {"ordinal": "0", "destinationAddress": "a"}],
                             ["distributedItemsOut", "count", 8, {"ordinal": "0", "destinationAddress": "b"}]]],
        [{}, [["executionStartTime", "ms", T0, None]]],
    ]),
    report(UUID_2, [[{**PROC, "proc": "2"}, [["receivedCount", "count", 1, {"ordinal": "0"}]]]]),
]


class StandInSource:
    """Answers as MasterSource does, from fixed replies of a master."""

    def __init__(self):
        members = (p.MemberInfo(UUID_1, "127.0.0.1:6001", os.getpid(), HOST, True, ""),
                   p.MemberInfo(UUID_2, "10.0.0.2:6001", 4242, "elsewhere", False, ""))
        self.cluster = p.ClusterReply("ACTIVE", "0.1.0", "jet", os.getpid(), HOST, 7, members, (0, 2500), (1, 0), (),
                                      (120, 80))
        self.jobs = p.JobsReply((summary(RUNNING_ID, "running", "RUNNING", 3), summary(DONE_ID, None, "COMPLETED")))
        restarted = p.ExecutionInfo(1, 1, T0, T0 + 1, (UUID_1,), "RESTARTED", "restarted on request")
        running = p.ExecutionInfo(2, 2, T0 + 2, None, (UUID_1, UUID_2), None, None)
        self.description = p.JobDescription(self.jobs.jobs[0], {"processing_guarantee": "NONE"}, None, None, None,
                                            (restarted, running), (), 500, p.pack_serialized(REPORTS))
        self.usage = ResourceUsage()

    def request(self, msg):
        if isinstance(msg, p.GetJobs):
            return self.jobs
        if isinstance(msg, p.DescribeJob):
            assert msg.job_id == RUNNING_ID, "only active jobs are described"
            return self.description
        raise AssertionError(f"unexpected {msg}")

    def cluster_reply(self):
        return self.cluster

    def member_usage(self, pid, host):
        return self.usage.of(pid, host)

    # the JSON API's documents
    def jobs_document(self):
        return {"jobs": ["the jobs"]}

    def job_document(self, name_or_id):
        if name_or_id != "running":
            raise NoSuchJob(f"No job with name or id '{name_or_id}' was found")
        return {"id": "x"}

    def cluster_document(self):
        return cluster_reply_document(self.cluster)

    def close(self):
        pass


def scraped() -> dict:
    text = render(StandInSource()).decode()
    return {family.name: {(s.name, frozenset(s.labels.items())): s.value for s in family.samples}
            for family in text_string_to_metric_families(text)}


def labels(**given) -> frozenset:
    return frozenset(given.items())


VERTEX = {"job": id_to_string(RUNNING_ID), "job_name": "running", "vertex": "map"}


def test_metrics_of_the_cluster_and_its_members():
    families = scraped()
    assert families["jetmq_members"] == {("jetmq_members", labels()): 2}
    assert families["jetmq_member_heartbeat_age_seconds"] == {
        ("jetmq_member_heartbeat_age_seconds", labels(member=UUID_1)): 0.12,
        ("jetmq_member_heartbeat_age_seconds", labels(member=UUID_2)): 0.08}
    assert families["jetmq_member_stalled_seconds"][("jetmq_member_stalled_seconds", labels(member=UUID_2))] == 2.5
    assert families["jetmq_member_restarts"][("jetmq_member_restarts", labels(member=UUID_1))] == 1
    # CPU and memory: of processes on this host only (member 1 is this process)
    assert list(families["jetmq_member_rss_bytes"]) == [("jetmq_member_rss_bytes", labels(member=UUID_1))]
    assert list(families["jetmq_member_cpu_percent"]) == [("jetmq_member_cpu_percent", labels(member=UUID_1))]
    assert families["jetmq_member_info"][("jetmq_member_info", labels(
        member=UUID_2, address="10.0.0.2:6001", host="elsewhere", pid="4242", forked="false"))] == 1


def test_metrics_of_the_jobs():
    families = scraped()
    jobs = families["jetmq_jobs"]
    assert jobs[("jetmq_jobs", labels(status="RUNNING"))] == 1
    assert jobs[("jetmq_jobs", labels(status="COMPLETED"))] == 1
    assert jobs[("jetmq_jobs", labels(status="FAILED"))] == 0
    running, done = id_to_string(RUNNING_ID), id_to_string(DONE_ID)
    assert families["jetmq_job_info"] == {
        ("jetmq_job_info", labels(job=running, job_name="running", status="RUNNING")): 1,
        ("jetmq_job_info", labels(job=done, job_name="", status="COMPLETED")): 1}
    # restarts and executions of the active job only (the finished one is not described)
    assert families["jetmq_job_restarts"] == {("jetmq_job_restarts", labels(job=running, job_name="running")): 1}
    assert families["jetmq_job_executions_started"] == {
        ("jetmq_job_executions_started", labels(job=running, job_name="running")): 3}
    assert families["jetmq_job_metrics_timestamp_seconds"] == {
        ("jetmq_job_metrics_timestamp_seconds", labels(job=running, job_name="running")): (T0 + 1000) / 1000}


def test_vertex_metrics_are_summed_per_vertex_and_member():
    families = scraped()
    one, two = labels(**VERTEX, member=UUID_1), labels(**VERTEX, member=UUID_2)
    assert families["jetmq_vertex_received_count"] == {
        ("jetmq_vertex_received_count_total", one): 35, ("jetmq_vertex_received_count_total", two): 1}
    # state saved to snapshots is not an item emitted
    assert families["jetmq_vertex_emitted_count"] == {("jetmq_vertex_emitted_count_total", one): 15}
    assert families["jetmq_vertex_queues_capacity"] == {("jetmq_vertex_queues_capacity", one): 1024}
    assert families["jetmq_vertex_distributed_items_out"] == {("jetmq_vertex_distributed_items_out_total", one): 15}
    # watermarks: the lowest coalesced, the highest observed, of the processors without an ordinal;
    # none at all for a vertex whose processors have none yet
    assert families["jetmq_vertex_coalesced_wm"] == {("jetmq_vertex_coalesced_wm", one): 400}
    assert families["jetmq_vertex_top_observed_wm"] == {("jetmq_vertex_top_observed_wm", one): 800}
    assert families["jetmq_vertex_last_forwarded_wm"] == {}
    assert families["jetmq_vertex_user_metric"] == {("jetmq_vertex_user_metric", labels(**VERTEX, member=UUID_1,
                                                                                          metric="lines")): 10}


def test_snake_case_names():
    assert [snake(n) for n in ("receivedCount", "distributedBytesIn", "lastForwardedWmLatency")] == [
        "received_count", "distributed_bytes_in", "last_forwarded_wm_latency"]


# ---- the token


def test_the_token_is_derived_from_the_key_and_differs_between_keys():
    key = new_keypair()
    assert auth.token_of(key) == auth.token_of(key)
    assert auth.token_of(key) != auth.token_of(new_keypair())
    assert len(auth.token_of(key)) == 64


def test_where_a_request_presents_its_token():
    assert auth.presented_token({"Authorization": "Bearer abc"}, "token=q") == ("abc", False)
    assert auth.presented_token({}, "a=1&token=q") == ("q", True)
    assert auth.presented_token({"Cookie": "x=1; jetmq_token=c"}, "") == ("c", False)
    assert auth.presented_token({"Authorization": "Basic abc"}, "") == (None, False)
    assert not auth.is_valid(None, "t") and not auth.is_valid("u", "t") and auth.is_valid("t", "t")


# ---- the server's routes


@pytest.fixture
def server():
    web = WebServer("127.0.0.1", 0)
    web.start(StandInSource(), None)
    yield web
    web.stop()


def get(port: int, path: str, method: str = "GET"):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


def test_routes(server):
    port = server.port
    assert get(port, "/api/jobs") == (200, "application/json", b'{"jobs": ["the jobs"]}')
    assert get(port, "/api/jobs/running") == (200, "application/json", b'{"id": "x"}')
    status, content_type, body = get(port, "/api/jobs/other")
    assert (status, content_type, json.loads(body)) == (
        404, "application/json", {"error": "No job with name or id 'other' was found"})
    assert get(port, "/api/cluster")[:2] == (200, "application/json")
    status, _, body = get(port, "/api/jobs/my%2Fjob%20one")  # a name is quoted in the path
    assert (status, json.loads(body)["error"]) == (404, "No job with name or id 'my/job one' was found")
    status, content_type, body = get(port, "/metrics")
    assert status == 200 and content_type.startswith("text/plain") and b"jetmq_members 2.0" in body
    for path in ("/api", "/api/", "/api/jobs/a/b", "/nothing", "/static/../server.py", "/../auth.py"):
        status, content_type, _ = get(port, path)
        assert (status, content_type) == (404, "application/json"), path
    assert get(port, "/api/jobs", method="HEAD") == (200, "application/json", b"")
    assert server.url == f"http://127.0.0.1:{port}/"


def test_static_files_with_their_content_types(server):
    from jetmq.web.server import STATIC_DIR

    if not (STATIC_DIR / "index.html").exists():
        pytest.skip("no dashboard files in jetmq/web/static")
    status, content_type, body = get(server.port, "/")
    assert (status, content_type, body) == (200, "text/html; charset=utf-8", (STATIC_DIR / "index.html").read_bytes())
    for file in STATIC_DIR.glob("*.js"):
        for path in (f"/{file.name}", f"/static/{file.name}"):
            status, content_type, body = get(server.port, path)
            assert (status, content_type) == (200, "text/javascript; charset=utf-8"), path
            assert body == file.read_bytes()


def test_a_master_that_does_not_answer_is_503():
    class Silent(StandInSource):
        def jobs_document(self):
            raise ClusterUnreachableError("the jetmq cluster at 127.0.0.1:1 did not answer within 4 s")

    web = WebServer("127.0.0.1", 0)
    web.start(Silent(), None)
    try:
        status, _, body = get(web.port, "/api/jobs")
        assert status == 503 and "did not answer" in json.loads(body)["error"]
    finally:
        web.stop()


def test_a_taken_port_cannot_be_served():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(WebStartError, match=f"cannot serve HTTP on 127.0.0.1:{port}"):
            WebServer("127.0.0.1", port)


def test_a_non_loopback_server_needs_the_key():
    web = WebServer("0.0.0.0", 0)
    try:
        with pytest.raises(WebStartError, match="needs the cluster key"):
            web.start(StandInSource(), None)
    finally:
        web.stop()


def test_options_checks():
    with pytest.raises(ValueError, match="--no-auth needs a loopback --web-bind"):
        ClusterConfig(no_auth=True, web_bind="0.0.0.0")
    ClusterConfig(no_auth=True, web_bind="0.0.0.0", web_port=0)  # no server: nothing to refuse
    with pytest.raises(ValueError, match="--web-port must be between 0 and 65535"):
        ClusterConfig(web_port=70000)
