"""The master's data directory: pid file, logs, and atomic writes of its state."""
from __future__ import annotations

import os
from pathlib import Path

import psutil

from jetmq.clusterkey import secure_data_dir
from jetmq.errors import ClusterKeyError, ClusterStartError
from jetmq.storage.files import atomic_write


def running_master_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process is alive and is a jetmq process."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = " ".join(psutil.Process(pid).cmdline())
    except (OSError, ValueError, psutil.Error):
        return None
    return pid if pid != os.getpid() and ("jetmq" in cmdline or "jet-start" in cmdline) else None


class DataDir:
    """Paths under a master's data directory."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def pid_file(self) -> Path:
        return self.root / "master.pid"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    @property
    def structures_log(self) -> Path:
        """Named maps and lists, as an append-only log."""
        return self.root / "structures.log"

    @property
    def quarantine_dir(self) -> Path:
        """Bad bytes the master could not read at start, kept for inspection."""
        return self.root / "quarantine"

    @property
    def snapshots_dir(self) -> Path:
        return self.root / "snapshots"

    @property
    def master_log(self) -> Path:
        return self.log_dir / "master.log"

    def claim(self) -> None:
        """Create the directory (the user's alone) and write our pid; refuse if a live master
        owns it, or another user does."""
        try:
            secure_data_dir(self.root)
        except ClusterKeyError as e:
            raise ClusterStartError(str(e)) from None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        other = running_master_pid(self.pid_file)
        if other is not None:
            raise ClusterStartError(f"data dir {self.root} is in use by a running jetmq master (pid {other})")
        atomic_write(self.pid_file, f"{os.getpid()}\n".encode())

    def release(self) -> None:
        try:
            if int(self.pid_file.read_text().strip()) == os.getpid():
                self.pid_file.unlink()
        except (OSError, ValueError):
            pass
