"""The snapshot commands of `jet`: save-snapshot, delete-snapshot, list-snapshots."""
from __future__ import annotations

from jetmq import protocol as p
from jetmq.cli.common import RET_OK, CommandError, Connection
from jetmq.cli.jobs import described, resolve, wait_for
from jetmq.errors import SnapshotNotFoundError
from jetmq.formatting import SnapshotRow, format_snapshot_table
from jetmq.ids import id_to_string
from jetmq.job_status import JobStatus
from jetmq.names import check_path_name


def cmd_save_snapshot(conn: Connection, args: dict) -> int:
    name_or_id, snapshot = args["<job>"], check_path_name("snapshot", args["<snapshot>"])
    job = resolve(conn, name_or_id)
    status = job.status
    if status.name not in ("RUNNING", "SUSPENDED"):
        raise CommandError(f"Job '{name_or_id}' is not active. Current state: {status.name}")
    if args["--cancel"]:
        print(f"Saving snapshot with name '{snapshot}' from job '{described(job)}' and cancelling the job...")
        job.cancel_and_export_snapshot(snapshot)
        wait_for(job, JobStatus.FAILED)
    else:
        print(f"Saving snapshot with name '{snapshot}' from job '{described(job)}'...")
        job.export_snapshot(snapshot)
    print(f"Exported snapshot '{snapshot}'.")
    return RET_OK


def cmd_delete_snapshot(conn: Connection, args: dict) -> int:
    name = check_path_name("snapshot", args["<snapshot>"])
    try:
        conn.client.delete_job_state_snapshot(name)
    except SnapshotNotFoundError as e:
        raise CommandError(str(e)) from None
    print(f"Deleted snapshot '{name}'.")
    return RET_OK


def cmd_list_snapshots(conn: Connection, args: dict) -> int:
    # what JetClient.get_job_state_snapshots() asks, through the bare requester (see Connection)
    rows = [SnapshotRow(s.name, s.creation_time, s.size_bytes, s.job_name, id_to_string(s.job_id))
            for s in conn.requester.request(p.GetSnapshots()).snapshots]
    print("\n".join(format_snapshot_table(rows, full_names=bool(args["--full-job-name"]))))
    return RET_OK
