"""The main thread's own connection to the master, for what the member's jobs tell it.

Everything the main thread tells the master (executions initialised and finished,
snapshot phases, metrics, job log lines, map and list writes, a leave request, the
goodbye) goes out on this DEALER socket, in the order it was sent: a job's writes reach
the master before its completion does, and the goodbye comes after everything else.
The link thread (link.py) keeps its own connection for hello and heartbeats and relays
what the master sends; it no longer relays what the member sends, which cost a wake-up
of that thread, and its Python, for every message (a list sink's write per item).

The master knows this socket by the link's identity with ``CHANNEL_SUFFIX`` appended.
It is opened when the master welcomes the member, and closed (dropping whatever is
still queued for a master that is gone) when the link loses the master; meanwhile the
messages go through the link as before.
"""
from __future__ import annotations

import logging
from typing import Callable

from jetmq import protocol as p
from jetmq.ids import CHANNEL_SUFFIX, member_identity
from jetmq.transport import DealerSocket, Poller

log = logging.getLogger(__name__)


class MasterChannel:
    def __init__(self, endpoint: str, member_uuid: str, poller: Poller, via_link: Callable[[object], None],
                 cluster_key=None):
        self._endpoint = endpoint
        self._identity = member_identity(member_uuid) + CHANNEL_SUFFIX
        self._poller = poller
        self._via_link = via_link
        self._key = cluster_key
        self._dealer: DealerSocket | None = None

    @property
    def is_open(self) -> bool:
        return self._dealer is not None

    def owns(self, ready) -> bool:
        return self._dealer is not None and ready is self._dealer

    def open(self) -> None:
        """Welcomed by the master: from now on, send straight to it."""
        if self._dealer is None:
            # not IMMEDIATE: what is sent while the connection is being made waits for it
            self._dealer = DealerSocket(self._endpoint, identity=self._identity, immediate=False, key=self._key)
            self._poller.register(self._dealer)

    def close(self, linger_ms: int = 0) -> None:
        """The master is lost (or the member stops): what is queued for it is dropped
        (after ``linger_ms``); until the next open(), messages go through the link."""
        if self._dealer is not None:
            self._poller.unregister(self._dealer)
            self._dealer.close(linger_ms=linger_ms)
            self._dealer = None

    def send(self, msg) -> None:
        if self._dealer is None:
            self._via_link(msg)
        elif not self._dealer.send(msg):
            log.warning("dropped %s: the queue to the master is full", type(msg).__name__)

    def received(self) -> list:
        """What the master sent here, to be handled as what the link relays. Our master
        sends on the link, and here only refuses a message from a member it no longer
        knows (the link hears of that too, and acts on it): a refusal is only logged."""
        messages = []
        while self._dealer is not None and (received := self._dealer.recv()) is not None:
            msg, _corr = received
            if isinstance(msg, p.Refused):
                log.info("the master refused a message from this member: %s", msg.reason)
            else:
                messages.append(msg)
        return messages
