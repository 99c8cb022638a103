"""jetmq: a distributed stream and batch processing engine, modelled on Hazelcast Jet 4.0.

What this module exports is the public API; everything else is internal.
"""
from jetmq.version import __version__
from jetmq.client import JetClient, connect
from jetmq.embedded import Cluster
from jetmq.errors import (
    AddressInUseError,
    ClusterStartError,
    ClusterUnreachableError,
    JetError,
    RemoteError,
)

__all__ = [
    # clients and clusters
    "Cluster",
    "JetClient",
    "connect",
    # errors
    "JetError",
    "AddressInUseError",
    "ClusterStartError",
    "ClusterUnreachableError",
    "RemoteError",
]
