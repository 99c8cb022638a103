"""`jet describe` and the --json documents of list-jobs, describe and cluster, on real clusters.

A job whose map raises is described as FAILED with the exception's type and message, also
by a master started again on the same data dir; a running streaming job with its members,
its executions (restarts and their causes) and per-vertex metrics (reported every 0.5 s).
"""
import json
import os
import signal
import subprocess
import sys

import pytest

import jetmq
from jetmq import JobConfig, JobStatus
from jetmq.testing import sequence_dag, wait_until
from tests.integration.dags import failing_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

WAIT_S = 30
INTERVAL_S = 0.5


def jet(cluster, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jetmq.cli.jet", "--addresses", cluster.address,
                           "--key-file", str(cluster.key_file), *args],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


def described(cluster, job: str) -> dict:
    result = jet(cluster, "describe", "--json", job)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def fields(text: str) -> dict[str, str]:
    """The ``Label: value`` lines at the top of `jet describe`'s text."""
    found = {}
    for line in text.splitlines():
        if not line:
            break
        label, _, value = line.partition(":")
        found[label] = value.strip()
    return found


def test_a_job_whose_map_raised_is_described_failed_with_the_exception_also_after_the_master_restarts(
        processes, tmp_path):
    data_dir = tmp_path / "data"
    # Given a job whose map raised ValueError on a cluster
    with jetmq.Cluster(members=2, data_dir=data_dir) as first:
        processes.add(first.master_pid)
        job = first.new_job(failing_pipeline(), JobConfig(name="bad-map"))
        wait_until(lambda: job.status is JobStatus.FAILED, WAIT_S, lambda: f"the job is {job.status}")
        # When it is described
        result = jet(first, "describe", "bad-map")
        # Then it shows FAILED, the exception's type and message, and the vertex it was raised in
        assert result.returncode == 0, result.stderr
        shown = fields(result.stdout)
        assert shown["Status"] == "FAILED"
        assert shown["ID"] == job.id_string
        assert shown["Failure"] == "ValueError: bad item 7"
        assert "map" in shown["Failed in"]
        assert shown["Completion time"] != "-"
        before = described(first, job.id_string)  # by id, as JSON
        assert before["failure"]["exception"] == "ValueError" and before["failure"]["message"] == "bad item 7"
        failure_text = job.failure_text
        assert before["failure"]["text"] == failure_text
        assert [(e["number"], e["ended"]) for e in before["executions"]] == [(1, "FAILED")]
        assert "ValueError: bad item 7" in before["executions"][0]["reason"]
        assert len(before["members"]) == 2
    # and a master started again on the same data dir describes it the same way
    with jetmq.Cluster(members=1, data_dir=data_dir) as second:
        processes.add(second.master_pid)
        result = jet(second, "describe", "bad-map")
        assert result.returncode == 0, result.stderr
        shown = fields(result.stdout)
        assert (shown["Status"], shown["Failure"]) == ("FAILED", "ValueError: bad item 7")
        after = described(second, "bad-map")
        for field in ("id", "status", "submission_time", "completion_time", "failure", "executions", "failures"):
            assert after[field] == before[field], field
        assert [m["address"] for m in after["members"]] == [None, None]  # the old members are gone
        # list-jobs --json lists it with its failure
        listed = json.loads(jet(second, "list-jobs", "-a", "--json").stdout)["jobs"]
        assert [(j["id"], j["name"], j["status"], j["failure_text"]) for j in listed] == \
            [(job.id_string, "bad-map", "FAILED", failure_text)]
        assert json.loads(jet(second, "list-jobs", "--json").stdout) == {"jobs": []}  # it is not active
        # and an unknown job is an error
        missing = jet(second, "describe", "no-such-job")
        assert missing.returncode == 1
        assert missing.stderr.splitlines()[0] == "ERROR: No job with name or id 'no-such-job' was found"
        missing = jet(second, "describe", "--json", "0000-0000-0000-0001")
        assert missing.returncode == 1
        assert missing.stderr.splitlines()[0] == "ERROR: No job with name or id '0000-0000-0000-0001' was found"


def test_a_running_job_is_described_with_its_members_executions_and_vertices(processes, tmp_path):
    with jetmq.Cluster(members=2, data_dir=tmp_path / "data", metrics_collection_interval=INTERVAL_S,
                       heartbeat_interval_ms=100, heartbeat_timeout_ms=1000) as cluster:
        processes.add(cluster.master_pid)
        job = cluster.new_job(sequence_dag("described", per_second=2000), JobConfig(name="streaming"))
        wait_until(lambda: job.status is JobStatus.RUNNING, WAIT_S, lambda: f"the job is {job.status}")
        members = {m.uuid: m for m in cluster.cluster().members}

        # Once metrics arrive, describe shows it RUNNING on both members, with counts per vertex
        # (each member reports on its own clock: the sink's count can come before the source's)
        def with_counts():
            document = described(cluster, "streaming")
            vertices = {v["name"]: v for v in document["metrics"]["vertices"]}
            source, sink = vertices.get("sequence-source"), vertices.get("committing-list-sink")
            return document if sink and sink["items_in"] > 0 and source and source["items_out"] > 0 else None
        document = wait_until(with_counts, WAIT_S, "no metrics came")
        assert document["status"] == "RUNNING" and document["metrics"]["state"] == "reported"
        assert {m["uuid"]: (m["address"], m["pid"]) for m in document["members"]} == \
            {uuid: (m.address, m.pid) for uuid, m in members.items()}
        vertices = {v["name"]: v for v in document["metrics"]["vertices"]}
        assert list(vertices) == ["sequence-source", "committing-list-sink"]
        assert vertices["sequence-source"]["items_out"] > 0 and vertices["sequence-source"]["rate"] > 0
        assert vertices["committing-list-sink"]["queue_capacity"] > 0
        assert [e["ended"] for e in document["executions"]] == [None]
        text = jet(cluster, "describe", "streaming").stdout
        assert fields(text)["Status"] == "RUNNING"
        lines = text.splitlines()
        assert all(any(line.strip().startswith(m.address) and uuid in line for line in lines)
                   for uuid, m in members.items())
        table = lines.index("  VERTEX                       ITEMS IN    ITEMS OUT    RATE (/s)  QUEUES")
        assert [line.split()[0] for line in lines[table + 1:]] == ["sequence-source", "committing-list-sink"]
        assert int(lines[table + 1].split()[2].replace(",", "")) > 0  # the source's items out

        # When it is restarted on request, and then loses a member
        assert jet(cluster, "restart", "streaming").returncode == 0
        victim = cluster.cluster().members[1]
        os.kill(victim.pid, signal.SIGKILL)

        # Then its executions say how each ended and why
        def three_executions():
            found = described(cluster, "streaming")
            return found if len(found["executions"]) >= 3 and found["status"] == "RUNNING" else None
        document = wait_until(three_executions, WAIT_S, lambda: f"{described(cluster, 'streaming')['executions']}")
        first, second = document["executions"][:2]
        assert (first["number"], first["ended"], first["reason"]) == (1, "RESTARTED", "restarted on request")
        assert (second["number"], second["ended"]) == (2, "RESTARTED")
        assert second["reason"] == f"member {victim.uuid} left the cluster"
        assert first["end_time"] <= second["start_time"] <= second["end_time"]
        assert document["restarts"] >= 2
        assert document["executions"][-1]["ended"] is None
        job.cancel()
        wait_until(lambda: job.status is JobStatus.FAILED, WAIT_S, "the job was not cancelled")
        document = described(cluster, "streaming")
        assert document["executions"][-1]["ended"] == "CANCELLED"
        assert document["failure"] == {"text": "CancellationException", "exception": "CancellationException",
                                       "message": "", "where": None}


def test_cluster_json_and_a_job_without_metrics(processes, tmp_path):
    with jetmq.Cluster(members=2, data_dir=tmp_path / "data", metrics_collection_interval=INTERVAL_S) as cluster:
        processes.add(cluster.master_pid)
        # cluster --json has what `jet cluster` shows
        result = jet(cluster, "cluster", "--json")
        assert result.returncode == 0, result.stderr
        document = json.loads(result.stdout)
        state = cluster.cluster()
        assert (document["state"], document["version"], document["cluster_name"], document["size"]) == \
            ("ACTIVE", state.version, state.cluster_name, 2)
        assert [(m["address"], m["uuid"], m["pid"], m["forked"]) for m in document["members"]] == \
            [(m.address, m.uuid, m.pid, True) for m in state.members]
        # without --json, Jet's format is unchanged
        assert jet(cluster, "cluster").stdout.splitlines()[:3] == ["State: ACTIVE", f"Version: {state.version}",
                                                                  "Size: 2"]
        # a job with metrics disabled says so
        job = cluster.new_job(sequence_dag("quiet", per_second=100), JobConfig(name="quiet", metrics_enabled=False))
        wait_until(lambda: job.status is JobStatus.RUNNING, WAIT_S, lambda: f"the job is {job.status}")
        document = described(cluster, "quiet")
        assert document["metrics"]["state"] == "disabled" and document["metrics"]["vertices"] == []
        text = jet(cluster, "describe", "quiet").stdout
        assert "Vertices:             no metrics: they are disabled for this job (metrics_enabled=False)" in text
        listed = json.loads(jet(cluster, "list-jobs", "--json").stdout)["jobs"]
        assert [(j["name"], j["status"], j["submission_time"]) for j in listed] == \
            [("quiet", "RUNNING", job.submission_time)]
        job.cancel()
        wait_until(lambda: job.status is JobStatus.FAILED, WAIT_S, "the job was not cancelled")
