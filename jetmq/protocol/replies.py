"""The replies any request may get: that it succeeded with nothing to return, or that it failed."""
from __future__ import annotations

from jetmq.protocol.codec import message


@message
class Ack:
    """A request that returns nothing succeeded."""


@message
class ErrorReply:
    """A request failed; ``error_type`` names a class in :mod:`jetmq.errors`."""

    error_type: str
    message: str


__all__ = ["Ack", "ErrorReply"]
