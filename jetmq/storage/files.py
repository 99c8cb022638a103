"""Files written so that a reader sees the old or the new version whole, and checked on read."""
from __future__ import annotations

import os
import tempfile
import zlib
from pathlib import Path

from jetmq.protocol import FileRef


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a reader sees the old or the new file, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_directory(path.parent)


def fsync_directory(path: Path) -> None:
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_checked(directory: Path, name: str, data: bytes) -> FileRef:
    """Write ``directory/name`` durably; its reference (name, size, CRC-32) for a manifest."""
    with open(directory / name, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return FileRef(name, len(data), zlib.crc32(data))


class DamagedFileError(Exception):
    """A file is missing, or is not what its reference says."""


def read_checked(directory: Path, ref: FileRef) -> bytes:
    """The bytes of a referenced file; DamagedFileError if it is missing or fails its checksum."""
    try:
        data = (directory / ref.name).read_bytes()
    except OSError as e:
        raise DamagedFileError(f"{ref.name} is missing ({e.strerror or e})") from None
    if len(data) != ref.size or zlib.crc32(data) != ref.crc32:
        raise DamagedFileError(f"{ref.name} is damaged (checksum mismatch: {len(data):,} bytes, "
                               f"{ref.size:,} expected)")
    return data
