"""SIGTERM and SIGINT, as the master's loop sees them.

The handler only records the signal; the wake-up pipe (signal.set_wakeup_fd), which the
loop polls like a socket, makes the loop look at once, and the loop stops the cluster
in order. A second signal while the first is being handled is the user insisting: it
ends the master at once (``on_repeat``).
"""
from __future__ import annotations

import os
import signal
from typing import Callable


class StopSignals:
    def __init__(self, on_repeat: Callable[[], None]):
        self._received: list[int] = []
        self._on_repeat = on_repeat
        self.fd, self._write_fd = os.pipe()
        os.set_blocking(self.fd, False)
        os.set_blocking(self._write_fd, False)
        signal.set_wakeup_fd(self._write_fd)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum, _frame) -> None:
        self._received.append(signum)
        if len(self._received) > 1:
            self._on_repeat()

    def take(self) -> str | None:
        """On the loop, when ``fd`` is readable: the name of the last signal, if one came."""
        try:
            os.read(self.fd, 512)
        except BlockingIOError:
            pass
        return signal.Signals(self._received[-1]).name if self._received else None

    def close(self) -> None:
        """Signals no longer wake the loop (their handlers stay: a late one is recorded)."""
        signal.set_wakeup_fd(-1)
        os.close(self.fd)
        os.close(self._write_fd)
