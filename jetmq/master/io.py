"""The master's disk work, off its loop: one thread per kind of work, in order.

The master's loop answers clients, heartbeats members and coordinates jobs; a write
with fsync takes milliseconds, a copy of a big snapshot seconds, and neither may make
a heartbeat late. So the loop hands disk work to an IoWorker and goes on; the work
runs on the worker's thread, one task after another in the order given, and what it
returns (or raises) comes back to the loop, which calls the task's continuation there.
The loop learns of finished tasks through a pipe it polls, like any socket.

Work functions run on the worker's thread: they get every value they need as
arguments (copies made on the loop, never the loop's live records), and return a
result for the continuation, which alone may touch the master's state.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from typing import Any, Callable

log = logging.getLogger(__name__)

#: A task slower than this is logged (what it was, and for how long).
SLOW_TASK_S = 1.0

Continuation = Callable[[Any, BaseException | None], None]


class IoWorker:
    def __init__(self, name: str):
        self.name = name
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._finished: deque[tuple[Continuation | None, Any, BaseException | None, str]] = deque()
        self.fd, self._wake_fd = os.pipe()
        os.set_blocking(self.fd, False)
        os.set_blocking(self._wake_fd, False)
        self._pending = 0  # tasks submitted and not yet continued
        self._thread = threading.Thread(target=self._run, name=f"jetmq-io-{name}", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        return self._pending > 0

    def submit(self, what: str, work: Callable[[], Any], then: Continuation | None = None) -> None:
        """Run ``work()`` on the worker's thread after every task submitted before it; then
        ``then(result, error)`` on the loop (an error without a continuation is logged)."""
        self._pending += 1
        self._tasks.put((what, work, then))

    def _run(self) -> None:
        while (task := self._tasks.get()) is not None:
            what, work, then = task
            started = time.monotonic()
            try:
                result, error = work(), None
            except BaseException as e:  # handed to the loop, which decides
                result, error = None, e
            took = time.monotonic() - started
            if took > SLOW_TASK_S:
                log.info("io %s: %s took %.1f s", self.name, what, took)
            self._finished.append((then, result, error, what))
            try:
                os.write(self._wake_fd, b"\0")
            except BlockingIOError:
                pass  # the pipe is full of wake-ups already: the loop will drain it

    def drain(self) -> None:
        """On the loop, when ``fd`` is readable: call the continuations of finished tasks."""
        try:
            while os.read(self.fd, 4096):
                pass
        except BlockingIOError:
            pass
        while self._finished:
            then, result, error, what = self._finished.popleft()
            self._pending -= 1
            if then is not None:
                then(result, error)
            elif error is not None:
                log.error("io %s: %s failed: %s", self.name, what, error)

    def stop(self, timeout_s: float) -> None:
        """Finish the tasks given so far (at most ``timeout_s``), then end the thread."""
        self._tasks.put(None)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("io %s: tasks still running after %.0f s at shutdown", self.name, timeout_s)
        self.drain()
        os.close(self.fd)
        os.close(self._wake_fd)


def run_now(what: str, work: Callable[[], Any], then: Continuation | None = None) -> None:
    """Run a task at once on this thread (a stand-in for an IoWorker in unit tests and at start)."""
    try:
        result, error = work(), None
    except Exception as e:
        result, error = None, e
    if then is not None:
        then(result, error)
    elif error is not None:
        log.error("%s failed: %s", what, error)
