"""Forks member processes and learns of their exit at once, through pidfds.

A pidfd becomes readable the moment its process exits, so the master's poll loop
wakes within a millisecond of a member's death: no SIGCHLD handler, no polling of
``psutil.pid_exists`` (which keeps answering True for an unreaped zombie child).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path

from jetmq.config import MemberConfig

log = logging.getLogger(__name__)

#: After Shutdown, how long members get to exit before they are killed.
STOP_GRACE_S = 5.0


@dataclass
class ForkedMember:
    uuid: str
    process: subprocess.Popen
    pidfd: int
    log_path: Path
    slot: int = 0  # its place in the pool of -m N (a replacement takes its slot)
    started: float = 0.0  # monotonic time it was forked
    joined: bool = False  # it said hello and was admitted
    asked_to_stop: bool = False  # the master told it to shut down: its exit is no loss

    @property
    def pid(self) -> int:
        return self.process.pid


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exited with code {returncode}"


class MemberLauncher:
    """Starts members as child processes, reaps them, and stops them."""

    def __init__(self, member_template: MemberConfig, log_dir: Path):
        self._template = member_template
        self._log_dir = log_dir
        self._by_pidfd: dict[int, ForkedMember] = {}

    def spawn(self, slot: int = 0) -> ForkedMember:
        member_uuid = str(uuidlib.uuid4())
        config = dataclasses.replace(self._template, uuid=member_uuid, forked=True)
        log_path = self._log_dir / f"member-{member_uuid[:8]}.log"
        with open(log_path, "ab") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "jetmq.member", json.dumps(dataclasses.asdict(config))],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                close_fds=True,
            )
        member = ForkedMember(member_uuid, process, os.pidfd_open(process.pid), log_path, slot, time.monotonic())
        self._by_pidfd[member.pidfd] = member
        log.info("forked member %s as pid %d (log %s)", member_uuid, process.pid, log_path)
        return member

    def forked(self, member_uuid: str) -> bool:
        """Whether the member of that uuid is one of the children this launcher started."""
        return self.by_uuid(member_uuid) is not None

    def by_uuid(self, member_uuid: str) -> ForkedMember | None:
        return next((m for m in self._by_pidfd.values() if m.uuid == member_uuid), None)

    def pidfds(self) -> list[int]:
        return list(self._by_pidfd)

    def members(self) -> list[ForkedMember]:
        return list(self._by_pidfd.values())

    def reap(self, pidfd: int) -> ForkedMember | None:
        """Collect the exited child behind ``pidfd``; None if it is still running."""
        member = self._by_pidfd.get(pidfd)
        if member is None or member.process.poll() is None:
            return None
        del self._by_pidfd[pidfd]
        os.close(pidfd)
        log.info("member %s (pid %d) %s", member.uuid, member.pid, describe_exit(member.process.returncode))
        return member

    def stop_all(self, grace_s: float = STOP_GRACE_S) -> None:
        """Wait for members told to shut down; SIGKILL whatever is left after the grace."""
        deadline = time.monotonic() + grace_s
        for member in list(self._by_pidfd.values()):
            remaining = max(0.0, deadline - time.monotonic())
            try:
                member.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                log.warning("member %s (pid %d) did not stop in %.1f s: killing it", member.uuid, member.pid, grace_s)
                member.process.kill()
                member.process.wait()
            self.reap(member.pidfd)
