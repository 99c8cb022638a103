"""A forked member dies with its master, even while user code never yields.

The link thread notices a changed parent pid within a tick, but only the main loop
can act on it, and a processor stuck in user code (a sleep, a busy loop, a blocking
call) keeps the main loop from ever running again. So a forked member asks the
kernel to SIGKILL it the moment its parent exits (``PR_SET_PDEATHSIG``), and checks
once that the parent it was forked by is still the one it has: a master that died
between the fork and this call would otherwise never be noticed.

The kernel sends the signal when the *thread* that forked the child exits; the
master forks its members from its main thread, whose end is the process's end.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent(parent_pid: int) -> bool:
    """Have this process SIGKILLed when its parent exits; False if ``parent_pid`` is
    not our parent any more (it died before we could watch it)."""
    if not sys.platform.startswith("linux"):
        return True  # elsewhere the link thread's parent-pid check is all there is
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")
    return not parent_pid or os.getppid() == parent_pid
