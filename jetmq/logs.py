"""Logging set-up shared by the master, members and the CLI."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

#: ``%(jobtag)s`` is "job=<id> " on a member's line about a job (jetmq/member/joblogs.py), else empty
_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)-7s [{role} %(process)d] %(jobtag)s%(name)s: %(message)s"
_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"


def configure_logging(role: str, stream=None, path: Path | None = None, level: int = logging.INFO) -> None:
    """Log lines tagged with ``role`` to ``stream`` and/or the file at ``path``."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    formatter = _Formatter(_FORMAT.format(role=role), _DATE_FORMAT)
    handlers: list[logging.Handler] = []
    if stream is not None:
        handlers.append(logging.StreamHandler(stream))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path))
    for handler in handlers or [logging.StreamHandler(sys.stderr)]:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(level)


class _Formatter(logging.Formatter):
    """Lines without a job tag (every process but a member, and a member's other lines) show none."""

    def format(self, record: logging.LogRecord) -> str:
        if "jobtag" not in record.__dict__:
            record.jobtag = ""
        return super().format(record)
