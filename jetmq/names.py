"""Names users give that become file names, or lines of output: checked before use.

A snapshot name is a directory under the snapshot store: ``/home/me/backup`` or
``../../x`` must never reach the file system, where replacing or deleting "the
snapshot" would replace or delete a user's directory. The same check applies
wherever a name from a user or a peer becomes a path. Names that are only shown
(job names) must not carry control characters, which would forge lines of a table or
a log. Clients check names before sending them, and the master checks them again on
arrival: a peer need not be our client.
"""
from __future__ import annotations

from pathlib import Path

from jetmq.errors import InvalidNameError

#: Longest name, in UTF-8 bytes: a file name may have 255, and the store adds prefixes.
MAX_NAME_BYTES = 200


def _check_text(kind: str, name) -> str:
    if not isinstance(name, str):
        raise InvalidNameError(f"a {kind} name must be a string, not {type(name).__name__}")
    if not name:
        raise InvalidNameError(f"a {kind} name must not be empty")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InvalidNameError(f"the {kind} name {name[:40]!r}... is longer than {MAX_NAME_BYTES} bytes")
    if not all(c.isprintable() or c == " " for c in name):
        raise InvalidNameError(f"the {kind} name {name!r} contains control or invisible characters")
    return name


def check_display_name(kind: str, name) -> str:
    """``name`` if it can name a job (printed in tables and logs); InvalidNameError otherwise."""
    return _check_text(kind, name)


def check_path_name(kind: str, name) -> str:
    """``name`` if it can name a file or directory of a store; InvalidNameError otherwise.

    Refused: path separators, ``.`` and ``..``, a leading dot (the stores' own
    staging files are hidden), control characters, and more than MAX_NAME_BYTES.
    """
    _check_text(kind, name)
    if "/" in name or "\\" in name:
        raise InvalidNameError(f"the {kind} name {name!r} contains a path separator: a {kind} name is a "
                               f"plain name, not a path")
    if name.startswith("."):
        raise InvalidNameError(f"the {kind} name {name!r} starts with '.'")
    return name


def path_in(root: Path, kind: str, name: str) -> Path:
    """``root / name`` for a checked name, refusing anything that would resolve outside ``root``."""
    check_path_name(kind, name)
    path = Path(root) / name
    if path.resolve(strict=False).parent != Path(root).resolve(strict=False):
        raise InvalidNameError(f"the {kind} name {name!r} leads outside the {kind} store")
    return path
