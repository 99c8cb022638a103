"""Bounded request/reply with the master, for clients and for members' sources.

Every request waits a bounded time for its reply, so an unreachable cluster is an
error naming the address within seconds, never a hang. One Requester is used from
one thread (its socket is not thread-safe).
"""
from __future__ import annotations

import itertools
import os
import time
from typing import Sequence

from jetmq import protocol as p
from jetmq.config import parse_address
from jetmq.errors import ClusterKeyError, ClusterUnreachableError, error_class
from jetmq.transport import DealerSocket, Poller, tcp_endpoint
from jetmq.transport.security import Keypair

#: How long a request waits for the master to answer before the cluster counts as unreachable.
REQUEST_TIMEOUT_S = 4.0
#: The environment variable naming the cluster's address(es), as Jet's JET_ADDRESSES.
ADDRESSES_ENV = "JET_ADDRESSES"
DEFAULT_ADDRESS = "127.0.0.1:5701"


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


class Requester:
    """Sends requests to the first master that answers among ``addresses``."""

    def __init__(self, addresses: str | Sequence[str] | None = None, timeout_s: float = REQUEST_TIMEOUT_S,
                 key: Keypair | None = None):
        """``key``: the cluster key to present (None: a cluster started with --no-auth)."""
        self.addresses = resolve_addresses(addresses) if addresses is not None else None
        self.timeout_s = timeout_s
        self.key = key
        self.address: str | None = None  # the master's host:port, once one answered
        self._dealer: DealerSocket | None = None
        self._corr = itertools.count(1)

    def request(self, msg, timeout_s: float | None = None):
        """Send ``msg`` and return the reply; raise the error the master replied with."""
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        if self._dealer is not None:
            reply = self._exchange(msg, timeout_s)
        else:
            reply = self._connect_and_exchange(msg, timeout_s)
        if isinstance(reply, p.ErrorReply):
            raise error_class(reply.error_type)(reply.message)
        return reply

    # serialization (cloudpickle) is imported by what unpickles values, not by every client:
    # `jet list-jobs` never loads it

    def get_map(self, name: str) -> dict:
        from jetmq import serialization

        blob = self.request(p.GetMap(name)).data
        return {serialization.loads(k): serialization.loads(v) for k, v in p.unpack_serialized(blob)}

    def get_list(self, name: str) -> list:
        from jetmq import serialization

        return [serialization.loads(item) for item in p.unpack_serialized(self.request(p.GetList(name)).data)]

    def close(self) -> None:
        if self._dealer is not None:
            self._dealer.close()
            self._dealer = None

    def _connect_and_exchange(self, msg, timeout_s: float):
        addresses = self.addresses or resolve_addresses(None)
        per_address_s = max(1.0, timeout_s / len(addresses))
        for address in addresses:
            self._dealer = DealerSocket(tcp_endpoint(*parse_address(address)), immediate=False, key=self.key)
            self.address = address
            try:
                return self._exchange(msg, per_address_s)
            except ClusterUnreachableError:
                self.close()
            except ClusterKeyError:
                if address == addresses[-1]:
                    raise
        raise ClusterUnreachableError(
            f"could not reach a jetmq cluster at {', '.join(addresses)} within {timeout_s:.0f} s "
            f"(is it running? see jet-start)")

    def _exchange(self, msg, timeout_s: float):
        corr = next(self._corr)
        deadline = time.monotonic() + timeout_s
        poller = Poller()
        poller.register(self._dealer)
        sent = False
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise ClusterUnreachableError(f"the jetmq cluster at {self.address} did not answer within {timeout_s:.0f} s")
            if not sent:
                sent = self._dealer.send(msg, corr)  # fails until the connection is up
            failure = self._dealer.handshake_failure()
            if failure is not None:
                self.close()
                raise ClusterKeyError(f"cannot talk to the jetmq cluster at {self.address}: {failure}")
            if poller.poll(min(0.05, deadline - now)):
                while (received := self._dealer.recv()) is not None:
                    reply, reply_corr = received
                    if reply_corr == corr:
                        return reply
