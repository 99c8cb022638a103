"""A file descriptor another thread (or a signal) makes readable, to end a poll early.

Threads that sleep in a ZeroMQ poll until their next deadline need a way to be woken
for what no socket carries: a stop request, a key admitted, a signal. A ``Waker`` is
a non-blocking pipe; ``wake()`` writes a byte (safe from any thread, and enough
however often it is called: a full pipe is already readable), the woken thread
``drain()``s it. ``zmq.Poller`` polls its ``fileno()`` beside sockets, and
``signal.set_wakeup_fd`` can write to it.
"""
from __future__ import annotations

import os
import threading


class Waker:
    def __init__(self):
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        # wake() and close() come from different threads: once closed, the descriptor's
        # number may belong to another file at once, which a late wake() must not write to
        self._lock = threading.Lock()
        self._closed = False

    def fileno(self) -> int:
        return self._read

    @property
    def write_fd(self) -> int:
        """The end that signal.set_wakeup_fd() writes to."""
        return self._write

    def wake(self) -> None:
        with self._lock:
            if self._closed:  # the poller it woke is gone
                return
            try:
                os.write(self._write, b"\0")
            except BlockingIOError:  # the pipe is full: it is readable already
                pass

    def drain(self) -> bytes:
        """What was written since the last drain (one byte per wake, or per signal)."""
        chunks = []
        while True:
            try:
                chunk = os.read(self._read, 4096)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            os.close(self._read)
            os.close(self._write)
