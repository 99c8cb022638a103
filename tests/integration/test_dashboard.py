"""The web dashboard in a real headless Chromium, against a real cluster and its HTTP server.

One page load, driven over the DevTools Protocol (tests/integration/chromium.py): the jobs
page shows a running streaming job and a failed one with its reason; the same loaded page
follows the job through suspend, resume and cancel made with the CLI (no reload: a marker
set in the page survives); the job page draws its DAG (vertices with rates, edges); the
members page shows each member's address and pid; a stopped master is reported in a banner. Screenshots of the three pages go to
``$JETMQ_DASHBOARD_SCREENSHOTS`` when set (scripts/screenshots: docs/images/), else to the
test's temporary directory. On a non-loopback --web-bind, the URL the master logs (with the
token) opens the dashboard, and the cookie it sets lets a later visit in without it.
"""
import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import jetmq
from jetmq import JobConfig, JobStatus
from jetmq.testing import wait_until

from tests.integration import chromium
from tests.integration.dags import failing_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

WAIT_S = 40
JOBS_DIR = Path(__file__).parent / "jobs"
#: The vertices of jobs/dashboard_job.py's pipeline, and its one partitioned edge.
VERTICES = ["item-stream", "map-filter", "window-accumulate-counting", "window-combine-counting", "noop-sink"]


class Page:
    """What the dashboard shows, read from the loaded page's DOM."""

    def __init__(self, browser: chromium.Chromium):
        self.browser = browser

    def js(self, expression: str):
        return self.browser.evaluate(expression)

    def job_status(self, job_id: str):
        return self.js(f"document.querySelector('tr.job[data-job-id=\"{job_id}\"] .status')?.dataset.status ?? null")

    def job_cells(self, job_id: str) -> list[str]:
        return self.js(f"[...document.querySelectorAll('tr.job[data-job-id=\"{job_id}\"] td')].map(td => td.innerText)")

    def text(self) -> str:
        return self.js("document.getElementById('page').innerText + '\\n[banner] ' + "
                       "document.getElementById('banner').innerText")

    def wait_for_status(self, job_id: str, status: str) -> None:
        wait_until(lambda: self.job_status(job_id) == status, WAIT_S,
                   lambda: f"the jobs page does not show {job_id} {status}; it shows:\n{self.text()}")


def test_the_dashboard_shows_jobs_a_job_and_members_and_follows_the_job_live(processes, run_cli, free_port,
                                                                               tmp_path):
    executable = chromium.executable_or_skip()
    shots = Path(os.environ.get("JETMQ_DASHBOARD_SCREENSHOTS") or tmp_path / "screenshots")
    # Given a cluster of 2 members with its HTTP server on a free port
    port, web_port = free_port(), free_port()
    data_dir = tmp_path / "data"
    address = f"127.0.0.1:{port}"
    started = run_cli("start", "--daemon", "-m", "2", "--port", port, "--data-dir", data_dir,
                      "--web-port", web_port, "--metrics-collection-interval", "0.5", timeout=90)
    assert started.returncode == 0, started.stderr
    processes.add(int((data_dir / "master.pid").read_text()))
    key = ["--addresses", address, "--key-file", data_dir / "cluster.key"]

    def jet(*args) -> subprocess.CompletedProcess:
        result = run_cli("jet", *key, *args, timeout=60)
        assert result.returncode == 0, f"jet {' '.join(map(str, args))}: {result.stderr}"
        return result

    with jetmq.JetClient(address, key_file=data_dir / "cluster.key") as client:
        members = client.cluster().members
        for m in members:
            processes.add(m.pid)
        # a streaming job submitted with the CLI, and a job whose map raised
        submitted = jet("submit", "-n", "dash-stream", JOBS_DIR / "dashboard_job.py")
        job_id = submitted.stdout.strip().splitlines()[-1].removeprefix("submitted ")
        failed = client.new_job(failing_pipeline(), JobConfig(name="bad-map"))
        wait_until(lambda: failed.status is JobStatus.FAILED, WAIT_S, lambda: f"bad-map is {failed.status}")

        browser = chromium.Chromium(executable, tmp_path / "chromium", processes, width=1360)
        try:
            page = Page(browser)
            # When the jobs page is loaded
            browser.load(f"http://127.0.0.1:{web_port}/#/jobs")
            page.js("window.sameLoad = 'still here'")
            # Then it shows the running job, with its guarantee and throughput, and the failed one's reason
            page.wait_for_status(job_id, "RUNNING")
            wait_until(lambda: page.job_cells(job_id)[-1].endswith(" /s") and page.job_cells(job_id)[-1] != "0.0 /s",
                       WAIT_S, lambda: f"no throughput for the job: {page.job_cells(job_id)}")
            name, shown_id, status, guarantee = page.job_cells(job_id)[:4]
            assert (name, shown_id, status, guarantee) == ("dash-stream", job_id, "RUNNING", "EXACTLY_ONCE")
            page.wait_for_status(failed.id_string, "FAILED")
            reason = page.js(f"document.querySelector('tr.reason[data-job-id=\"{failed.id_string}\"]')?.innerText")
            assert reason.strip() == "ValueError: bad item 7"
            browser.screenshot(shots / "dashboard-jobs.png")

            # When the job is suspended and resumed with the CLI, the same loaded page follows it
            jet("suspend", "dash-stream")
            page.wait_for_status(job_id, "SUSPENDED")
            jet("resume", "dash-stream")
            page.wait_for_status(job_id, "RUNNING")
            assert page.js("window.sameLoad") == "still here", "the page was reloaded"

            # When the job's page is opened: its DAG is drawn, every vertex with a rate, and the edges
            page.js(f"location.hash = '#/job/{job_id}'")

            def drawn():
                found = page.js("[...document.querySelectorAll('svg.dag g.vertex')]"
                                ".map(g => [g.dataset.vertex, g.querySelector('.rate')?.textContent ?? ''])")
                return found if [v for v, _ in found] == VERTICES and all(r.endswith(" /s") for _, r in found) else None
            wait_until(drawn, WAIT_S, lambda: f"the DAG is not drawn with rates; the page shows:\n{page.text()}")
            edges = page.js("[...document.querySelectorAll('svg.dag g.edge')].map(g => [g.dataset.from, g.dataset.to])")
            assert edges == [list(pair) for pair in zip(VERTICES, VERTICES[1:])]
            assert page.js("document.querySelector('#job-head .status').dataset.status") == "RUNNING"
            # the executions: the first ended SUSPENDED on request, the second runs
            executions = page.js("[...document.querySelectorAll('#job-executions tbody tr')]"
                                 ".map(tr => [tr.cells[0].innerText, tr.cells[5].innerText, tr.cells[6].innerText])")
            assert executions == [["2", "RUNNING", ""], ["1", "SUSPENDED", "suspended on request"]]
            snapshot = "document.querySelector('#job-head dd[data-fact=\"Last snapshot\"]').innerText"
            wait_until(lambda: page.js(snapshot).split(" ")[0].isdigit(), WAIT_S,
                       lambda: f"the job page shows no snapshot of an exactly-once job: {page.js(snapshot)}")
            browser.screenshot(shots / "dashboard-job.png")

            # When it is cancelled, the job page shows it FAILED with the reason
            jet("cancel", "dash-stream")
            wait_until(lambda: page.js("document.querySelector('#job-head .status')?.dataset.status") == "FAILED",
                       WAIT_S, lambda: f"the job page does not show the job FAILED:\n{page.text()}")
            wait_until(lambda: page.js("document.querySelector('#job-failure .failure-reason')?.innerText")
                       == "CancellationException", WAIT_S, lambda: f"no failure reason:\n{page.text()}")

            # When the members page is opened: each member's address and pid
            page.js("location.hash = '#/members'")
            expected = sorted([m.address, str(m.pid)] for m in members)

            def rows():
                found = page.js("[...document.querySelectorAll('#members tr.member')]"
                                ".map(tr => [tr.cells[0].innerText, tr.cells[2].innerText])")
                return found if sorted(found) == expected else None
            wait_until(rows, WAIT_S, lambda: f"the members page does not show {expected}:\n{page.text()}")
            cpu = page.js("[...document.querySelectorAll('#members tr.member')].map(tr => tr.cells[4].innerText)")
            assert all(c.endswith(" %") for c in cpu), cpu
            assert page.js("window.sameLoad") == "still here", "the page was reloaded"
            browser.screenshot(shots / "dashboard-members.png")
            listed = json.loads(jet("list-jobs", "-a", "--json").stdout)["jobs"]
            assert {(j["name"], j["status"]) for j in listed} == {("dash-stream", "FAILED"), ("bad-map", "FAILED")}

            # When the cluster stops, the page says it cannot reach the master
            stopped = run_cli("stop", *key, timeout=60)
            assert stopped.returncode == 0, stopped.stderr
            wait_until(lambda: page.js("document.getElementById('banner').innerText").startswith(
                "Cannot reach the master"), WAIT_S, lambda: f"no banner:\n{page.text()}")
            assert page.js("document.getElementById('live').innerText") == "offline"
        finally:
            browser.close()
    for name in ("dashboard-jobs.png", "dashboard-job.png", "dashboard-members.png"):
        assert (shots / name).read_bytes().startswith(b"\x89PNG"), name


def test_on_a_non_loopback_bind_the_dashboard_opens_with_the_token_of_the_logged_url(processes, run_cli, free_port,
                                                                                      tmp_path):
    executable = chromium.executable_or_skip()
    # Given a cluster whose HTTP server binds every address, so it asks for the cluster key's token
    port, web_port = free_port(), free_port()
    data_dir = tmp_path / "data"
    started = run_cli("start", "--daemon", "-m", "1", "--port", port, "--data-dir", data_dir,
                      "--web-port", web_port, "--web-bind", "0.0.0.0", timeout=90)
    assert started.returncode == 0, started.stderr
    processes.add(int((data_dir / "master.pid").read_text()))
    url = (data_dir / "web.url").read_text().strip()
    assert url.startswith(f"http://127.0.0.1:{web_port}/?token=")
    with jetmq.JetClient(f"127.0.0.1:{port}", key_file=data_dir / "cluster.key") as client:
        member = client.cluster().members[0]
        processes.add(member.pid)
    browser = chromium.Chromium(executable, tmp_path / "chromium", processes)
    try:
        page = Page(browser)
        # When the logged URL is opened: the jobs page loads its data with the token
        browser.load(url + "#/jobs")
        wait_until(lambda: "no jobs yet" in page.js("document.getElementById('jobs-summary')?.innerText ?? ''"),
                   WAIT_S, lambda: f"the jobs page did not load:\n{page.text()}")
        # and a later visit without the token in the URL is let in by the cookie the server set
        browser.load(f"http://127.0.0.1:{web_port}/#/members")
        wait_until(lambda: page.js("[...document.querySelectorAll('#members tr.member')]"
                                   ".map(tr => tr.cells[0].innerText)") == [member.address],
                   WAIT_S, lambda: f"the members page does not show {member.address}:\n{page.text()}")
        assert page.js("document.getElementById('banner').hidden") is True
    finally:
        browser.close()
    # while a request without the token or its cookie is refused
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{web_port}/api/jobs", timeout=30)
    assert refused.value.code == 401
