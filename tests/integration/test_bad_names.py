"""Names that are paths never reach the file system: refused by the CLI, the client and the master.

A snapshot name is a directory of the snapshot store. Before these checks,
`jet save-snapshot job /home/me/backup` replaced the user's directory with the
snapshot, and `jet delete-snapshot /home/me/backup` deleted it.
"""
import subprocess
import sys
from pathlib import Path

import pytest

from jetmq.version import PYTHON_VERSION, __version__
from jetmq import protocol as p
from jetmq.errors import InvalidNameError
from jetmq.job_status import JobStatus
from jetmq.requester import Requester
from jetmq.testing import wait_until
from tests.integration.keys import cluster_key
from tests.integration.dags import streaming_dag

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

JOBS = Path(__file__).parent / "jobs"
HINT = "To see the full stack trace, re-run with the -v/--verbosity option"


def jet(cluster, *args):
    return subprocess.run([sys.executable, "-m", "jetmq.cli.jet", "--addresses", cluster.address, *map(str, args)],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


def tree(path: Path) -> dict:
    """Every file under ``path`` with its content: what must not change."""
    return {str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()}


@pytest.fixture
def user_directory(tmp_path):
    directory = tmp_path / "home" / "me" / "backup"
    directory.mkdir(parents=True)
    (directory / "thesis.tex").write_text("six years of work\n")
    (directory / "notes").mkdir()
    (directory / "notes" / "ideas.txt").write_text("more\n")
    return directory


def test_save_and_delete_snapshot_refuse_a_path_and_leave_the_users_directory_alone(cluster, user_directory):
    # Given a running job and a user's directory full of files
    job = cluster.new_job(streaming_dag(), None)
    wait_until(lambda: job.status is JobStatus.RUNNING, 30, lambda: f"the job is {job.status}")
    before = tree(user_directory)
    # When the directory's path is given as a snapshot name to save-snapshot, with and without -C
    for args in (("save-snapshot",), ("save-snapshot", "-C")):
        result = jet(cluster, *args, job.id_string, user_directory)
        # Then it is an error naming the problem, and nothing was saved or cancelled
        assert result.returncode == 1, result.stdout
        assert result.stderr.startswith(f"ERROR: the snapshot name '{user_directory}' contains a path separator")
        assert result.stdout == ""
    assert job.status is JobStatus.RUNNING
    # When it is given to delete-snapshot
    result = jet(cluster, "delete-snapshot", user_directory)
    assert result.returncode == 1
    assert "contains a path separator" in result.stderr
    # Then the user's directory is as it was, and the store holds no snapshot
    assert tree(user_directory) == before
    assert jet(cluster, "list-snapshots").stdout.splitlines()[1:] == []


@pytest.mark.parametrize("name", ["..", ".", "../../outside", "two\nlines", "x" * 201, ""])
def test_the_master_refuses_bad_snapshot_names_from_a_peer_that_skips_the_clients_checks(cluster, tmp_path, name):
    # Given a job, and a raw requester that sends whatever it is given
    job = cluster.new_job(streaming_dag(), None)
    wait_until(lambda: job.status is JobStatus.RUNNING, 30, lambda: f"the job is {job.status}")
    store = cluster.data_dir / "snapshots"
    before = tree(store) if store.exists() else {}
    requester = Requester(cluster.address, key=cluster_key())
    try:
        # When it asks the master to export and to delete snapshots of that name
        for msg in (p.ExportSnapshot(job.id, name, False), p.ExportSnapshot(job.id, name, True),
                    p.DeleteSnapshot(name)):
            # Then the master answers with the name's error, and the job and the store are untouched
            with pytest.raises(InvalidNameError):
                requester.request(msg)
    finally:
        requester.close()
    assert job.status is JobStatus.RUNNING
    assert (tree(store) if store.exists() else {}) == before
    assert not (cluster.data_dir / "outside").exists() and not (cluster.data_dir.parent / "outside").exists()
    assert cluster.cluster().size == 2


@pytest.mark.parametrize("option,name,message", [
    ("-s", "../other-cluster/snapshot", "contains a path separator"),
    ("-s", ".staging", "starts with '.'"),
    ("-n", "a job\nwith two lines", "control or invisible characters"),
])
def test_submit_refuses_bad_names_before_running_the_script(cluster, option, name, message):
    before = len(cluster.get_jobs())
    result = jet(cluster, "submit", option, name, JOBS / "streaming_job.py")
    assert result.returncode == 1
    assert result.stderr.startswith("ERROR: ") and message in result.stderr, result.stderr
    assert "Submitting" not in result.stdout
    assert len(cluster.get_jobs()) == before


def test_a_hello_whose_member_id_is_not_a_uuid_is_refused(cluster):
    requester = Requester(cluster.address, key=cluster_key())
    try:
        reply = requester.request(p.Hello("../../evil", 1, "host", "127.0.0.1:1", False, "jet", __version__, PYTHON_VERSION, ""))
    finally:
        requester.close()
    assert isinstance(reply, p.Refused) and "is not a UUID" in reply.reason
    assert cluster.cluster().size == 2
