"""jet: submit and manage jobs on a jetmq cluster.

Usage:
  jet [options] submit [-n NAME] [-s SNAPSHOT] <file> [<args>...]
  jet [options] list-jobs [-a] [--json]
  jet [options] describe [--json] <job>
  jet [options] logs [-f] [--member UUID] [--tail N] <job>
  jet [options] cancel <job>
  jet [options] suspend <job>
  jet [options] resume <job>
  jet [options] restart <job>
  jet [options] save-snapshot [-C] <job> <snapshot>
  jet [options] delete-snapshot <snapshot>
  jet [options] list-snapshots [-F]
  jet [options] cluster [--json]
  jet --version
  jet -h | --help

Commands:
  submit           Run a Python script that submits jobs to the cluster.
  list-jobs        List the active jobs (-a: all jobs, finished ones too).
  describe         Show a job in full: status, failure, executions, members, per-vertex metrics.
  logs             Show a job's log lines from every member, and what its code printed (-f: follow).
  cancel           Cancel a job.
  suspend          Suspend a running job (through a snapshot).
  resume           Resume a suspended job.
  restart          Restart a running job.
  save-snapshot    Export a named snapshot of a job (-C: and cancel the job).
  delete-snapshot  Delete a named snapshot.
  list-snapshots   List the named snapshots (-F: full job names).
  cluster          Show the cluster's state and members.

Options:
  -n NAME, --name NAME              The name of the submitted job(s).
  -s SNAPSHOT, --snapshot SNAPSHOT  Start the submitted job(s) from this named snapshot.
  -a, --all                         List finished jobs too.
  -C, --cancel                      Cancel the job after exporting the snapshot.
  -F, --full-job-name               Do not shorten long job names.
  --json                            Print a JSON document instead (list-jobs, describe, cluster).
  -f, --follow                      Show new lines as they come, until the job ends (logs).
  --member UUID                     Only the lines of this member (a uuid or its start) (logs).
  --tail N                          Only the last N lines (logs).
  --addresses ADDRS                 The cluster's HOST:PORT[,...] (default: $JET_ADDRESSES,
                                    else 127.0.0.1:5701).
  --cluster-name NAME               The cluster's name [default: jet].
  --key-file FILE                   The cluster key (default: $JET_KEY_FILE, else cluster.key in the
                                    default data dir of the cluster's name; "none": no key).
  -v, --verbosity                   Log at INFO, and show stack traces of errors.
  -h, --help                        Show this help.
  --version                         Show the version.

A <job> is a job's name or id: a name wins; among jobs of one name, the active one, else the newest.
Everything after submit's <file> is the script's, untouched (its own options included); jet's
options go before <file>.
"""
from __future__ import annotations

import sys

from jetmq.version import __version__
from jetmq.cli.common import RET_OK, RET_USAGE, CommandError, Connection, fail, parse_args, split_script_arguments

# Everything else loads when a command needs it: `jet --version` and `jet --help`
# import no zmq, no protocol, no client; the commands that only read (list-jobs, describe, logs,
# list-snapshots, cluster) send bare requests, so they import no JetClient, serialization or engine modules.
# tests/unit/test_cli_imports.py holds these import sets.

COMMANDS = ("submit", "list-jobs", "describe", "logs", "cancel", "suspend", "resume", "restart", "save-snapshot",
            "delete-snapshot", "list-snapshots", "cluster")


def cmd_cluster(conn: Connection, args: dict) -> int:
    # what JetClient.cluster() asks, through the bare requester (see Connection)
    from jetmq import protocol as p
    from jetmq.formatting import format_cluster, format_json
    from jetmq.web.documents import cluster_reply_document, member_rows

    reply = conn.requester.request(p.ClusterRequest())
    if args["--json"]:
        lines = format_json(cluster_reply_document(reply))
    else:
        lines = format_cluster(reply.state, reply.version, member_rows(reply), reply.notes)
    print("\n".join(lines))
    return RET_OK


#: Each command's handler, as (module, function): imported only for that command.
HANDLERS = {
    "cluster": (__name__, "cmd_cluster"),
    "list-jobs": ("jetmq.cli.jobs", "cmd_list_jobs"),
    "describe": ("jetmq.cli.describe", "cmd_describe"),
    "logs": ("jetmq.cli.logs", "cmd_logs"),
    "cancel": ("jetmq.cli.jobs", "cmd_cancel"),
    "suspend": ("jetmq.cli.jobs", "cmd_suspend"),
    "resume": ("jetmq.cli.jobs", "cmd_resume"),
    "restart": ("jetmq.cli.jobs", "cmd_restart"),
    "submit": ("jetmq.cli.submit", "cmd_submit"),
    "save-snapshot": ("jetmq.cli.snapshots", "cmd_save_snapshot"),
    "delete-snapshot": ("jetmq.cli.snapshots", "cmd_delete_snapshot"),
    "list-snapshots": ("jetmq.cli.snapshots", "cmd_list_snapshots"),
}


def handler_of(command: str):
    """The function that runs ``command`` (importing its module), or None."""
    import importlib

    where = HANDLERS.get(command)
    if where is None:
        return None
    module, function = where
    return getattr(sys.modules.get(module) or importlib.import_module(module), function)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    own, script_arguments = split_script_arguments(argv)
    args = parse_args(__doc__, own, f"jetmq {__version__}")
    if args["submit"]:
        args["<args>"] = script_arguments
    verbose = args["--verbosity"]
    if verbose:
        import logging

        from jetmq.logs import configure_logging

        print("Verbose mode is on, setting logging level to INFO")
        configure_logging("jet", stream=sys.stderr, level=logging.INFO)
    command = next(c for c in COMMANDS if args[c])
    handler = handler_of(command)
    if handler is None:
        return fail(f"'{command}' is not implemented yet in jetmq {__version__}")
    from jetmq.errors import JetError
    from jetmq.requester import resolve_addresses

    try:
        addresses = resolve_addresses(args["--addresses"])
    except ValueError as e:
        return fail(str(e), code=RET_USAGE)
    try:
        with Connection(addresses, args["--key-file"], args["--cluster-name"]) as conn:
            return handler(conn, args)
    except (JetError, CommandError) as e:
        return fail(str(e), verbose=verbose)


if __name__ == "__main__":
    sys.exit(main())
