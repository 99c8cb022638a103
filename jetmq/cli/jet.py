"""jet: submit and manage jobs on a jetmq cluster.

Usage:
  jet [options] submit [-n NAME] [-s SNAPSHOT] <file> [<args>...]
  jet [options] list-jobs [-a]
  jet [options] cancel <job>
  jet [options] suspend <job>
  jet [options] resume <job>
  jet [options] restart <job>
  jet [options] save-snapshot [-C] <job> <snapshot>
  jet [options] delete-snapshot <snapshot>
  jet [options] list-snapshots [-F]
  jet [options] cluster
  jet --version
  jet -h | --help

Commands:
  submit           Run a Python script that submits jobs to the cluster.
  list-jobs        List the active jobs (-a: all jobs, finished ones too).
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

import logging
import sys


from jetmq.version import __version__
from jetmq.cli.common import RET_OK, RET_USAGE, CommandError, fail, parse_args, split_script_arguments
from jetmq.cli.jobs import cmd_cancel, cmd_list_jobs, cmd_restart, cmd_resume, cmd_suspend
from jetmq.cli.snapshots import cmd_delete_snapshot, cmd_list_snapshots, cmd_save_snapshot
from jetmq.cli.submit import cmd_submit
from jetmq.client import JetClient
from jetmq.requester import resolve_addresses
from jetmq.errors import JetError
from jetmq.formatting import format_cluster
from jetmq.logs import configure_logging

COMMANDS = ("submit", "list-jobs", "cancel", "suspend", "resume", "restart", "save-snapshot",
            "delete-snapshot", "list-snapshots", "cluster")


def cmd_cluster(client: JetClient, args: dict) -> int:
    state = client.cluster()
    print("\n".join(format_cluster(state.state, state.version, state.members, state.notes)))
    return RET_OK


HANDLERS = {
    "cluster": cmd_cluster,
    "list-jobs": cmd_list_jobs,
    "cancel": cmd_cancel,
    "suspend": cmd_suspend,
    "resume": cmd_resume,
    "restart": cmd_restart,
    "submit": cmd_submit,
    "save-snapshot": cmd_save_snapshot,
    "delete-snapshot": cmd_delete_snapshot,
    "list-snapshots": cmd_list_snapshots,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    own, script_arguments = split_script_arguments(argv)
    args = parse_args(__doc__, own, f"jetmq {__version__}")
    if args["submit"]:
        args["<args>"] = script_arguments
    verbose = args["--verbosity"]
    if verbose:
        print("Verbose mode is on, setting logging level to INFO")
        configure_logging("jet", stream=sys.stderr, level=logging.INFO)
    command = next(c for c in COMMANDS if args[c])
    handler = HANDLERS.get(command)
    if handler is None:
        return fail(f"'{command}' is not implemented yet in jetmq {__version__}")
    try:
        addresses = resolve_addresses(args["--addresses"])
    except ValueError as e:
        return fail(str(e), code=RET_USAGE)
    try:
        with JetClient(addresses, key_file=args["--key-file"], cluster_name=args["--cluster-name"]) as client:
            return handler(client, args)
    except (JetError, CommandError) as e:
        return fail(str(e), verbose=verbose)


if __name__ == "__main__":
    sys.exit(main())
