"""The cluster's key: made by jet-start, kept in ``<data-dir>/cluster.key``, presented by all.

Whoever holds the file can run code on every member of the cluster: keep it as you
would an SSH key. The file holds one CURVE key pair (see jetmq/transport/security.py),
is the user's alone (mode 0600, in a data directory of mode 0700), and never appears
in a command line or a log. Where a client finds it: ``--key-file`` (``key_file=``),
else ``$JET_KEY_FILE``, else ``cluster.key`` in the default data directory of the
cluster's name when there is one. ``none`` for either means: no key (a cluster
started with ``--no-auth``).
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from jetmq.config import DEFAULT_CLUSTER_NAME, default_data_dir
from jetmq.errors import ClusterKeyError
from jetmq.transport.security import Keypair, new_keypair, public_of, valid_key

KEY_FILE = "cluster.key"
KEY_FILE_ENV = "JET_KEY_FILE"
NO_KEY = "none"
_HEADER = "jetmq cluster key"


def secure_data_dir(path: Path) -> None:
    """Make the data directory (mode 0700); refuse one that another user owns."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = path.stat()
    if info.st_uid != os.getuid():
        raise ClusterKeyError(f"the data directory {path} belongs to another user (uid {info.st_uid}): "
                              f"refusing to keep this cluster's key in it")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(path, 0o700)


def create_or_load(data_dir: Path) -> Keypair:
    """The cluster key in ``data_dir``, made on first use (mode 0600)."""
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        keypair = new_keypair()
        text = f"{_HEADER}\npublic {keypair.public.decode()}\nsecret {keypair.secret.decode()}\n"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return load(path)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        return keypair
    return load(path)


def load(path: Path) -> Keypair:
    """The key pair in a key file; ClusterKeyError (never showing the key) if it is not one."""
    path = Path(path)
    try:
        info = path.stat()
        lines = path.read_text().splitlines()
    except OSError as e:
        raise ClusterKeyError(f"cannot read the cluster key {path}: {e.strerror or e}") from None
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise ClusterKeyError(f"the cluster key {path} may be read by others (mode "
                              f"{stat.S_IMODE(info.st_mode):04o}): make it 0600")
    fields = dict(line.split(" ", 1) for line in lines[1:] if " " in line)
    public, secret = fields.get("public", "").encode(), fields.get("secret", "").encode()
    if not lines or lines[0] != _HEADER or not valid_key(public) or not valid_key(secret) \
            or public_of(secret) != public:
        raise ClusterKeyError(f"{path} is not a jetmq cluster key")
    return Keypair(public, secret)


def find(key_file: str | os.PathLike | None = None, cluster_name: str = DEFAULT_CLUSTER_NAME) -> Path | None:
    """Where a client's key is: ``key_file``, else $JET_KEY_FILE, else the default data
    directory's key of ``cluster_name`` if it has one; None for no key."""
    given = key_file if key_file is not None else os.environ.get(KEY_FILE_ENV) or None
    if given is not None:
        return None if str(given) == NO_KEY else Path(given)
    default = default_data_dir(cluster_name) / KEY_FILE
    return default if default.exists() else None


def client_key(key_file: str | os.PathLike | None = None, cluster_name: str = DEFAULT_CLUSTER_NAME) \
        -> Keypair | None:
    """The key a client presents (see ``find``); ClusterKeyError if the file named is no key."""
    path = find(key_file, cluster_name)
    return load(path) if path is not None else None
