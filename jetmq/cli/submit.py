"""`jet submit`: run a job script on the client side, as Jet runs a job's JAR."""
from __future__ import annotations

import os
import runpy
import sys
import traceback

from jetmq import bootstrap, clusterkey
from jetmq.cli.common import RET_OK, CommandError, Connection
from jetmq.errors import InvalidNameError
from jetmq.names import check_display_name, check_path_name
from jetmq.requester import resolve_addresses


def cmd_submit(conn: Connection, args: dict) -> int:
    # the script's clients connect themselves; a key file given must be a key, before anything runs
    clusterkey.client_key(conn.key_file, conn.cluster_name)
    path, arguments = args["<file>"], args["<args>"]
    if not os.path.isfile(path):
        raise CommandError(f"File {path} could not be found.")
    try:  # before the script runs: its jobs get these names
        if args["--name"] is not None:
            check_display_name("job", args["--name"])
        if args["--snapshot"] is not None:
            check_path_name("snapshot", args["--snapshot"])
    except InvalidNameError as e:
        raise CommandError(str(e)) from None
    print(f"Submitting '{path}' with arguments [{', '.join(arguments)}]")
    if args["--name"]:
        print(f"Using job name '{args['--name']}'")
    if args["--snapshot"]:
        print(f"Will restore the job from the snapshot with name '{args['--snapshot']}'")
    sys.stdout.flush()
    context = bootstrap.SubmitContext(resolve_addresses(args["--addresses"]), args["--name"], args["--snapshot"],
                                      args["--key-file"], args["--cluster-name"])
    bootstrap.set_context(context)
    saved_argv = sys.argv
    sys.argv = [path, *arguments]
    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as e:
        if e.code not in (None, 0):
            _cancel_all(context)
            raise CommandError(f"the script {path} exited with code {e.code}") from None
    except KeyboardInterrupt:
        return 130  # the jobs keep running: a job's lifecycle is the cluster's, not the client's
    except Exception as e:
        _cancel_all(context)
        detail = traceback.format_exc() if args["--verbosity"] else f"{type(e).__name__}: {e}"
        raise CommandError(f"the script {path} failed: {detail}") from None
    finally:
        sys.argv = saved_argv
        bootstrap.set_context(None)
    if not context.submitted:
        raise CommandError(f"the script {path} submitted no job")
    return RET_OK


def _cancel_all(context: bootstrap.SubmitContext) -> None:
    """A failed script leaves no job behind."""
    for job in context.submitted:
        try:
            job.cancel()
        except Exception:
            pass
