"""Raw ZeroMQ peers in tests present the cluster's key, as any client of an authenticated cluster must."""
import os

from jetmq import clusterkey
from jetmq.transport.security import connect_as


def cluster_key(key_file=None):
    """The key of ``key_file``, else of $JET_KEY_FILE (set by the cluster fixtures); None if neither."""
    path = key_file or os.environ.get(clusterkey.KEY_FILE_ENV)
    return clusterkey.load(path) if path else None


def authenticated(sock, key_file=None):
    """``sock`` (not yet connected) made a CURVE client with the cluster's key; returned."""
    key = cluster_key(key_file)
    if key is not None:
        connect_as(sock, key, key.public)
    return sock
