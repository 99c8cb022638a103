"""Per-job logs of a member: which lines are about a job, where they go.

A member log line is about job J when
- user code of J runs: a processor of J is being called on the member's main thread
  (the engine sets ``CURRENT.context``, as it does for user metrics); this covers what
  user functions log with ``logging`` and what they print, since ``sys.stdout`` and
  ``sys.stderr`` are replaced by writers that turn complete lines into log records
  (loggers ``stdout`` and ``stderr``);
- or its message names an execution of J as ``execution %s`` with the id as printed
  (``id_to_string``, as `jet describe` shows it; the engine's lines about
  executions do); ``execution_initialising()``, called when an execution is set up,
  tells which job each execution belongs to;
- or it was logged with ``extra={"job_id": J}``.

Such a line carries ``job=<id>`` in the member log (``grep job=<id>`` finds it), is
appended to ``<log dir>/jobs/<job id>/member-<uuid8>.log`` (the log dir is where the
member's log file is; a member logging to a terminal keeps no files), and is pushed to
the master, which keeps the latest lines of each job for `jet logs` (master/job_logs.py).
Pushes go every PUSH_INTERVAL_S, and before every ExecutionFinished, so that a job that
has ended has all its lines at the master. At most MAX_PENDING_LINES wait for a push:
beyond, lines reach the file only, and the master is told how many it missed.
"""
from __future__ import annotations

import io
import logging
import os
import re
import sys
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Callable

from jetmq import protocol as p
from jetmq.core.metrics_context import CURRENT
from jetmq.ids import id_to_string

log = logging.getLogger(__name__)

#: How often a member pushes its job log lines to the master.
PUSH_INTERVAL_S = 0.2
#: Lines waiting for a push at most (per member); more are counted, and reach the file only.
MAX_PENDING_LINES = 1000
#: A longer line (a print without newlines, a huge message) is cut there.
MAX_LINE_CHARS = 4000
#: A job's file on a member grows to this size at most; then one last line says so.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Per-job files kept open at once (the least recently written is closed first).
OPEN_FILES = 16
#: How many executions' jobs are remembered (an execution's lines may come after it ended).
EXECUTION_MEMORY = 1000

_executions: OrderedDict[str, int] = OrderedDict()  # execution id, as printed (id_to_string) -> job id
_EXECUTION_NAMED = "execution %s"
_PLACEHOLDER = re.compile(r"%(?:\(\w+\))?[-#0 +]*(?:\d+|\*)?(?:\.\d+)?[a-zA-Z%]")
_main_thread = threading.main_thread().ident


def remember_execution(execution_id: int, job_id: int) -> None:
    printed = id_to_string(execution_id)
    _executions[printed] = job_id
    _executions.move_to_end(printed)
    while len(_executions) > EXECUTION_MEMORY:
        _executions.popitem(last=False)


def execution_initialising(msg: p.InitExecution) -> None:
    """The member sets up an execution: remember its job, and log that (a line about the job)."""
    remember_execution(msg.execution_id, msg.job_id)
    log.info("execution %s initialising: member %d of %d", id_to_string(msg.execution_id), msg.member_index + 1,
             len(msg.members))


def job_of(record: logging.LogRecord) -> int | None:
    """The job ``record`` is about, or None (see the module's doc)."""
    job = record.__dict__.get("job_id")
    if job is not None:
        return job
    if record.thread == _main_thread:
        context = CURRENT.context
        if context is not None:
            return context.job_id
    return _named_execution(record)


def _named_execution(record: logging.LogRecord) -> int | None:
    msg, args = record.msg, record.args
    if not isinstance(msg, str) or not isinstance(args, tuple) or _EXECUTION_NAMED not in msg:
        return None
    before = msg[:msg.index(_EXECUTION_NAMED) + len(_EXECUTION_NAMED) - 2]
    index = sum(1 for m in _PLACEHOLDER.finditer(before) if m.group() != "%%")
    try:
        return _executions.get(args[index])
    except (IndexError, TypeError):
        return None


class JobTagger(logging.Filter):
    """Sets ``record.job_id`` and ``record.jobtag`` ("job=<id> " or "") once per record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "jobtag" not in record.__dict__:
            job = job_of(record)
            record.job_id = job
            record.jobtag = "" if job is None else f"job={id_to_string(job)} "
        return True


class JobLogs(logging.Handler):
    """Collects the lines about jobs: appends them to the per-job files and pushes them to the master."""

    def __init__(self, member_uuid: str, send: Callable[[object], None], log_dir: Path | None,
                 formatter: logging.Formatter | None = None):
        super().__init__(logging.NOTSET)
        self.member_uuid = member_uuid
        self._send = send
        self.jobs_dir = None if log_dir is None else log_dir / "jobs"
        self.setFormatter(formatter or logging.Formatter("%(asctime)s %(levelname)-7s %(jobtag)s%(name)s: %(message)s"))
        self._text = logging.Formatter("%(levelname)s %(name)s: %(message)s")
        self._pending: list[p.JobLogLine] = []
        self._missed: dict[int, int] = {}  # job id -> lines not pushed (too many waiting)
        self._files: OrderedDict[int, io.TextIOBase] = OrderedDict()
        self._file_bytes: dict[int, int] = {}
        self._next_push = 0.0
        #: wakes the member's main loop: a line logged on another thread while the loop
        #: sleeps with no push due (the loop's own lines it sees in wake_at())
        self.wake: Callable[[], None] | None = None

    def file_of(self, job_id: int) -> Path | None:
        if self.jobs_dir is None:
            return None
        return self.jobs_dir / id_to_string(job_id) / f"member-{self.member_uuid[:8]}.log"

    def emit(self, record: logging.LogRecord) -> None:
        job = record.__dict__.get("job_id")
        if job is None:
            return
        try:
            created_ms = int(record.created * 1000)
            for text in self._text.format(record).split("\n"):  # a traceback: a line each
                if len(text) > MAX_LINE_CHARS:
                    text = text[:MAX_LINE_CHARS] + f" ... ({len(text) - MAX_LINE_CHARS} more characters)"
                if len(self._pending) < MAX_PENDING_LINES:
                    self._pending.append(p.JobLogLine(job, created_ms, text))
                else:
                    self._missed[job] = self._missed.get(job, 0) + 1
            self._write(job, self.format(record))
            if self.wake is not None and threading.get_ident() != _main_thread:
                self.wake()
        except Exception:
            self.handleError(record)

    def _write(self, job: int, line: str) -> None:
        path = self.file_of(job)
        if path is None:
            return
        if self._file_bytes.get(job, 0) >= MAX_FILE_BYTES:
            return
        try:
            file = self._files.get(job)
            if file is None:
                path.parent.mkdir(parents=True, exist_ok=True)
                file = self._files[job] = open(path, "a", encoding="utf-8", errors="replace")
                self._file_bytes[job] = path.stat().st_size
                while len(self._files) > OPEN_FILES:
                    self._files.popitem(last=False)[1].close()
            self._files.move_to_end(job)
            size = self._file_bytes[job]
            if size + len(line) + 1 >= MAX_FILE_BYTES:
                line = f"... this file reached {MAX_FILE_BYTES} bytes: the job's later lines are not written here"
            file.write(line + "\n")
            self._file_bytes[job] = size + len(line) + 1
        except OSError as e:  # a full disk: the lines still go to the master and the member log
            self._file_bytes[job] = MAX_FILE_BYTES
            print(f"cannot write {path}: {e}; the job's lines are no longer written there", file=sys.__stderr__)

    # ------------------------------------------------------------------ pushes (main thread)

    def push(self, now: float) -> None:
        """Called on every turn of the member's loop: push when the interval is up."""
        if now >= self._next_push:
            self._next_push = now + PUSH_INTERVAL_S
            self.push_now()

    def wake_at(self) -> float | None:
        """When the member's loop must turn for the next push (a monotonic time), or None:
        no line waits."""
        return self._next_push if self._pending or self._missed else None

    def push_now(self) -> None:
        with self.lock:
            lines, self._pending = self._pending, []
            missed, self._missed = self._missed, {}
            for job, file in self._files.items():
                try:
                    file.flush()
                except OSError as e:  # a full disk: what the buffer held is lost for the file only
                    self._file_bytes[job] = MAX_FILE_BYTES
                    print(f"cannot write {self.file_of(job)}: {e}; the job's lines are no longer written there",
                          file=sys.__stderr__)
        now_ms = int(time.time() * 1000)
        for job, count in missed.items():
            where = self.file_of(job)
            lines.append(p.JobLogLine(job, now_ms, (
                f"WARNING {__name__}: {count} lines of this job were not sent to the master (more than "
                f"{MAX_PENDING_LINES} waited for one push)" + (f"; they are in {where}" if where else ""))))
        if lines:
            self._send(p.JobLogLines(tuple(lines)))

    def before_finish(self, send: Callable[[object], None]) -> Callable[[object], None]:
        """``send`` to the master, pushing the pending lines first when an execution's part ends:
        the master then has them before it learns the job ended."""
        def send_to_master(msg) -> None:
            if isinstance(msg, (p.ExecutionFinished, p.ExecutionInitialized)):
                self.push_now()
            send(msg)
        return send_to_master

    def close(self) -> None:
        with self.lock:
            for file in self._files.values():
                try:
                    file.close()
                except OSError:
                    pass  # a full disk: said when the flush failed
            self._files.clear()
        super().close()


class LineWriter(io.TextIOBase):
    """sys.stdout or sys.stderr of a member: each complete line becomes a log record of the
    logger ``name`` (about the job whose code printed it, if any)."""

    def __init__(self, name: str, original):
        super().__init__()
        self.original = original
        self._logger = logging.getLogger(name)
        self._partial = ""
        self._lock = threading.Lock()
        self._busy = threading.local()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if getattr(self._busy, "on", False):  # logging itself reports an error on stderr
            return self.original.write(text)
        with self._lock:  # not held while logging: a handler's lock is taken there
            *lines, self._partial = (self._partial + text).split("\n")
            if len(self._partial) > MAX_LINE_CHARS:
                lines.append(self._partial)
                self._partial = ""
        self._busy.on = True
        try:
            for line in lines:
                self._logger.info("%s", line.rstrip("\r"))
        finally:
            self._busy.on = False
        return len(text)

    def flush(self) -> None:
        pass  # a partial line waits for its newline

    def fileno(self) -> int:
        return self.original.fileno()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:
        return getattr(self.original, "encoding", "utf-8")


def log_dir_of(root: logging.Logger) -> Path | None:
    """Where the member's log file is: its log FileHandler's directory, else that of the
    file its stderr goes to (a forked member's), else None (a terminal)."""
    for handler in root.handlers:
        if isinstance(handler, logging.FileHandler):
            return Path(handler.baseFilename).parent
    try:
        target = os.readlink("/proc/self/fd/2")
    except OSError:
        return None
    return Path(target).parent if target.startswith("/") and os.path.isfile(target) else None


def install(member_uuid: str, send: Callable[[object], None]) -> JobLogs:
    """Tag the member's log lines with their jobs, collect those lines, capture prints."""
    root = logging.getLogger()
    tagger = JobTagger()
    formatter = root.handlers[0].formatter if root.handlers else None
    for handler in root.handlers:
        handler.addFilter(tagger)
    logs = JobLogs(member_uuid, send, log_dir_of(root), formatter)
    logs.addFilter(tagger)
    root.addHandler(logs)
    sys.stdout = LineWriter("stdout", sys.stdout)
    sys.stderr = LineWriter("stderr", sys.stderr)
    return logs


def uninstall(logs: JobLogs) -> None:
    """Undo install() (for tests in one process)."""
    root = logging.getLogger()
    root.removeHandler(logs)
    for handler in root.handlers:
        for f in [f for f in handler.filters if isinstance(f, JobTagger)]:
            handler.removeFilter(f)
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if isinstance(stream, LineWriter):
            setattr(sys, name, stream.original)
    logs.close()
