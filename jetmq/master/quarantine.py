"""Bad bytes kept aside: what the master could not read at start goes to ``<data-dir>/quarantine``.

A job record or a record of the structures log that cannot be decoded must not
stop the master from starting, nor be silently dropped: it is moved (or copied)
here under a name that says when and what, beside a ``.reason.txt`` that says why,
so an operator can inspect it and nothing is lost by the master's decision.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)


class Quarantine:
    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def _target(self, name: str) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = self.directory / f"{stamp}-{name}"
        counter = 1
        while target.exists() or target.with_name(target.name + ".reason.txt").exists():
            counter += 1
            target = self.directory / f"{stamp}-{counter}-{name}"
        return target

    def move(self, path: Path, reason: str) -> Path | None:
        """Move ``path`` here; the new path, or None if it could not be moved (then it stays)."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            target = self._target(Path(path).name)
            os.replace(path, target)
            target.with_name(target.name + ".reason.txt").write_text(reason + "\n")
        except OSError as e:
            log.error("cannot move %s to the quarantine %s: %s", path, self.directory, e)
            return None
        log.error("moved %s to %s: %s", path, target, reason)
        return target

    def keep(self, name: str, data: bytes, reason: str) -> Path | None:
        """Keep ``data`` here under ``name``; its path, or None if it could not be written."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            target = self._target(name)
            target.write_bytes(data)
            target.with_name(target.name + ".reason.txt").write_text(reason + "\n")
        except OSError as e:
            log.error("cannot keep %d bad bytes in the quarantine %s: %s", len(data), self.directory, e)
            return None
        log.error("kept %d bytes in %s: %s", len(data), target, reason)
        return target
