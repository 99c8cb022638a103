"""Errors raised by jetmq; every one a subclass of :class:`JetError`.

Replies from the master carry an error's class name, and the client raises the
class of that name from this module, so a user catches the same type whether the
error happened locally or on the master.
"""


class JetError(Exception):
    """The base of every jetmq error."""


class ClusterUnreachableError(JetError):
    """No jetmq master answered at the given address in time."""


class AddressInUseError(JetError):
    """A master cannot bind its control port because something else holds it."""


class ClusterStartError(JetError):
    """A master or its members failed to come up."""


class RemoteError(JetError):
    """The master answered a request with an error of a kind this client does not know."""


def error_class(name: str) -> type[JetError]:
    """The JetError subclass called ``name``, or RemoteError when there is none."""
    cls = globals().get(name)
    if isinstance(cls, type) and issubclass(cls, JetError):
        return cls
    return RemoteError
