"""The Python client of a jetmq cluster: talks to the master, and only to it.

A client is used from one thread (its socket is not thread-safe). Every request
waits a bounded time for its reply, so an unreachable cluster is an error naming
the address within seconds, never a hang.
"""
from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass
from typing import Sequence

from jetmq import protocol as p
from jetmq.config import parse_address
from jetmq.errors import ClusterUnreachableError, error_class
from jetmq.transport import DealerSocket, Poller, tcp_endpoint

#: How long a request waits for the master to answer before the cluster counts as unreachable.
REQUEST_TIMEOUT_S = 4.0
#: The environment variable naming the cluster's address(es), as Jet's JET_ADDRESSES.
ADDRESSES_ENV = "JET_ADDRESSES"
DEFAULT_ADDRESS = "127.0.0.1:5701"


@dataclass(frozen=True)
class Member:
    """A member of the cluster; ``address`` is its data-plane host:port."""

    uuid: str
    address: str
    pid: int
    host: str
    forked: bool


@dataclass(frozen=True)
class ClusterState:
    """What `jet cluster` shows."""

    state: str
    version: str
    cluster_name: str
    master_pid: int
    master_host: str
    membership_version: int
    members: tuple[Member, ...]

    @property
    def size(self) -> int:
        return len(self.members)


def resolve_addresses(addresses: str | Sequence[str] | None) -> list[str]:
    """Addresses as given, else from $JET_ADDRESSES, else the default 127.0.0.1:5701."""
    if addresses is None:
        addresses = os.environ.get(ADDRESSES_ENV) or DEFAULT_ADDRESS
    if isinstance(addresses, str):
        addresses = [a for a in addresses.split(",") if a.strip()]
    resolved = []
    for address in addresses:
        host, port = parse_address(address)
        resolved.append(f"{host}:{port}")
    if not resolved:
        raise ValueError("no cluster address given")
    return resolved


class JetClient:
    """A connection to a jetmq cluster's master."""

    def __init__(self, addresses: str | Sequence[str] | None = None, timeout_s: float = REQUEST_TIMEOUT_S):
        self._addresses = resolve_addresses(addresses) if addresses is not None else None
        self._timeout_s = timeout_s
        self._dealer: DealerSocket | None = None
        self._address: str | None = None
        self._corr = itertools.count(1)

    @property
    def address(self) -> str | None:
        """The master's host:port this client talks to (None before the first request)."""
        return self._address

    def cluster(self) -> ClusterState:
        reply = self._request(p.ClusterRequest())
        members = tuple(Member(m.uuid, m.address, m.pid, m.host, m.forked) for m in reply.members)
        return ClusterState(reply.state, reply.version, reply.cluster_name, reply.master_pid, reply.master_host,
                            reply.membership_version, members)

    def shutdown_cluster(self) -> tuple[int, ...]:
        """Ask the master to stop its members and itself; the pids of the master and its forked members.

        Returns as soon as the master has accepted; the processes exit shortly after.
        """
        reply = self._request(p.StopClusterRequest())
        return (reply.master_pid, *reply.member_pids)

    def close(self) -> None:
        if self._dealer is not None:
            self._dealer.close()
            self._dealer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ requests

    def _request(self, msg, timeout_s: float | None = None):
        """Send ``msg`` and return the reply; raise the error the master replied with."""
        timeout_s = self._timeout_s if timeout_s is None else timeout_s
        if self._dealer is not None:
            reply = self._exchange(msg, timeout_s)
        else:
            reply = self._connect_and_exchange(msg, timeout_s)
        if isinstance(reply, p.ErrorReply):
            raise error_class(reply.error_type)(reply.message)
        return reply

    def _connect_and_exchange(self, msg, timeout_s: float):
        addresses = self._addresses or resolve_addresses(None)
        per_address_s = max(1.0, timeout_s / len(addresses))
        for address in addresses:
            self._dealer = DealerSocket(tcp_endpoint(*parse_address(address)))
            self._address = address
            try:
                return self._exchange(msg, per_address_s)
            except ClusterUnreachableError:
                self.close()
        tried = ", ".join(addresses)
        raise ClusterUnreachableError(
            f"could not reach a jetmq cluster at {tried} within {timeout_s:.0f} s (is it running? see jet-start)")

    def _exchange(self, msg, timeout_s: float):
        corr = next(self._corr)
        deadline = time.monotonic() + timeout_s
        poller = Poller()
        poller.register(self._dealer)
        sent = False
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise ClusterUnreachableError(
                    f"the jetmq cluster at {self._address} did not answer within {timeout_s:.0f} s")
            if not sent:
                sent = self._dealer.send(msg, corr)  # fails until the connection is up
            if poller.poll(min(0.05, deadline - now)):
                while (received := self._dealer.recv()) is not None:
                    reply, reply_corr = received
                    if reply_corr == corr:
                        return reply


def connect(addresses: str | Sequence[str] | None = None) -> JetClient:
    """A client of the cluster at ``addresses`` (default: $JET_ADDRESSES, else 127.0.0.1:5701).

    The connection is checked at once, so an unreachable cluster raises here.
    """
    client = JetClient(addresses if addresses is not None else resolve_addresses(None))
    client.cluster()
    return client
