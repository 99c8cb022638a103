"""jet-stop: stop a jetmq cluster, its master and all the members it forked.

Usage:
  jet-stop [--addresses ADDRS] [--key-file FILE] [--member UUID]
  jet-stop -h | --help

Options:
  --addresses ADDRS  The master's HOST:PORT (default: $JET_ADDRESSES, else 127.0.0.1:5701).
  --key-file FILE    The cluster key (default: $JET_KEY_FILE, else the default data dir's cluster.key).
  --member UUID      Stop only this member, gracefully: its jobs restart on the other
                     members first (through a terminal snapshot), then it leaves.
  -h, --help         Show this help.
"""
from __future__ import annotations

import socket
import sys
import time

import psutil

from jetmq.cli.common import parse_args, RET_ERROR, RET_OK
from jetmq.client import JetClient
from jetmq.requester import resolve_addresses
from jetmq import clusterkey
from jetmq.errors import ClusterKeyError, ClusterUnreachableError, MemberNotFoundError

#: How long jet-stop waits for the master and its members to exit.
STOP_WAIT_S = 20.0
#: How long jet-stop waits for a master to answer before saying there is none.
FIND_TIMEOUT_S = 3.0
#: How long jet-stop --member waits for the member's jobs to move and the member to go.
MEMBER_LEAVE_WAIT_S = 120.0


def _processes(pids) -> list[psutil.Process]:
    found = []
    for pid in pids:
        try:
            found.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, argv)
    try:
        addresses = resolve_addresses(args["--addresses"])
    except ValueError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
    try:
        clusterkey.client_key(args["--key-file"])  # a key file given must be a key, before anything else
    except ClusterKeyError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return RET_ERROR
    if args["--member"]:
        return stop_member(addresses, args["--member"], args["--key-file"])
    with JetClient(addresses, timeout_s=FIND_TIMEOUT_S, key_file=args["--key-file"]) as client:
        try:
            # ask first, so the processes are known before the master goes away
            state = client.cluster()
            pids = client.shutdown_cluster()
        except ClusterUnreachableError:
            print(f"No jetmq cluster found to stop at {', '.join(addresses)}", file=sys.stderr)
            return RET_ERROR
        except ClusterKeyError as e:
            print(f"ERROR: {e}", file=sys.stderr)
            return RET_ERROR
    # the master forks its members on its own host, so their pids mean something only there
    processes = _processes(pids) if state.master_host == socket.gethostname() else []
    _, alive = psutil.wait_procs(processes, timeout=STOP_WAIT_S)
    if alive:
        print(f"ERROR: still running after {STOP_WAIT_S:.0f} s: pids {sorted(p.pid for p in alive)}",
              file=sys.stderr)
        return RET_ERROR
    print(f"Stopped the jetmq cluster '{state.cluster_name}' at {client.address} "
          f"(master pid {pids[0]}, {len(pids) - 1} forked members)")
    return RET_OK


def stop_member(addresses: list[str], uuid: str, key_file: str | None = None) -> int:
    with JetClient(addresses, timeout_s=FIND_TIMEOUT_S, key_file=key_file) as client:
        try:
            client.shutdown_member(uuid)
        except ClusterUnreachableError:
            print(f"No jetmq cluster found to stop at {', '.join(addresses)}", file=sys.stderr)
            return RET_ERROR
        except (MemberNotFoundError, ClusterKeyError) as e:
            print(f"ERROR: {e}", file=sys.stderr)
            return RET_ERROR
        deadline = time.monotonic() + MEMBER_LEAVE_WAIT_S
        while any(m.uuid == uuid for m in client.cluster().members):
            if time.monotonic() > deadline:
                print(f"ERROR: member {uuid} is still in the cluster after {MEMBER_LEAVE_WAIT_S:.0f} s",
                      file=sys.stderr)
                return RET_ERROR
            time.sleep(0.05)
    print(f"Member {uuid} left the cluster.")
    return RET_OK


if __name__ == "__main__":
    sys.exit(main())
