"""Fault injection: kill-member and pause-member (scripts/kill-member, scripts/pause-member).

Usage:
  faults kill [--addresses ADDRS] [--member UUID | --during-snapshot] [--timeout S] [--seed N]
  faults pause [--addresses ADDRS] [--member UUID] [--seconds S] [--seed N]
  faults -h | --help

Options:
  --addresses ADDRS   The master's HOST:PORT (default: $JET_ADDRESSES, else 127.0.0.1:5701).
  --member UUID       The member to hit (default: one chosen at random).
  --during-snapshot   Wait until a job is taking a snapshot, then kill a member of it.
  --timeout S         How long --during-snapshot waits for a snapshot [default: 60].
  --seconds S         How long a paused member stays stopped (SIGSTOP, then SIGCONT) [default: 5].
  --seed N            Seed of the random choice.
  -h, --help          Show this help.

Members are signalled by pid, so they must run on this host.
"""
from __future__ import annotations

import os
import random
import signal
import sys
import time

from jetmq.cli.common import RET_ERROR, RET_OK, parse_args
from jetmq.client import JetClient, Member

#: How often --during-snapshot looks at the jobs.
PHASE_POLL_S = 0.002


def pick_member(client: JetClient, uuid: str | None, rng: random.Random) -> Member:
    members = client.cluster().members
    if uuid is not None:
        found = [m for m in members if m.uuid == uuid]
        if not found:
            raise LookupError(f"No member with uuid '{uuid}' in the cluster")
        return found[0]
    if not members:
        raise LookupError("the cluster has no members")
    return rng.choice(members)


def member_in_a_snapshot(client: JetClient, timeout_s: float) -> str:
    """The uuid of a member of a job that is taking a snapshot right now."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for job in client.get_jobs():
            metrics = job.metrics()
            if metrics["snapshot_in_progress"] >= 0 and metrics["execution_members"]:
                return metrics["execution_members"][-1]
        time.sleep(PHASE_POLL_S)
    raise LookupError(f"no job took a snapshot within {timeout_s:.0f} s")


def kill(client: JetClient, member: Member) -> None:
    os.kill(member.pid, signal.SIGKILL)
    print(f"Killed member {member.uuid} (pid {member.pid}, {member.address})", flush=True)


def pause(member: Member, seconds: float) -> None:
    os.kill(member.pid, signal.SIGSTOP)
    print(f"Paused member {member.uuid} (pid {member.pid}, {member.address}) for {seconds:g} s", flush=True)
    try:
        time.sleep(seconds)  # the pause itself is the fault
    finally:
        os.kill(member.pid, signal.SIGCONT)
    print(f"Resumed member {member.uuid} (pid {member.pid})", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, argv)
    rng = random.Random(int(args["--seed"]) if args["--seed"] is not None else None)
    with JetClient(args["--addresses"]) as client:
        try:
            if args["kill"]:
                uuid = args["--member"]
                if args["--during-snapshot"]:
                    uuid = member_in_a_snapshot(client, float(args["--timeout"]))
                kill(client, pick_member(client, uuid, rng))
            else:
                pause(pick_member(client, args["--member"], rng), float(args["--seconds"]))
        except (LookupError, ProcessLookupError) as e:
            print(f"ERROR: {e}", file=sys.stderr)
            return RET_ERROR
    return RET_OK


if __name__ == "__main__":
    sys.exit(main())
