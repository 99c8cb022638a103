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


class ClusterKeyError(JetError):
    """The cluster's key is missing, unreadable, or not the key of the cluster asked."""


class ClusterStartError(JetError):
    """A master or its members failed to come up."""


class JobNotFoundError(JetError):
    """No job of that name or id."""


class JobAlreadyExistsError(JetError):
    """An active job of that name exists already."""


class IllegalJobStateError(JetError):
    """The job's status does not allow that action (Jet's IllegalStateException)."""


class CancellationError(JetError):
    """The job was cancelled (join() of a cancelled job raises it)."""


class JobFailedError(JetError):
    """The job ended in FAILED; the message is the job's failure text."""


class JobTimeoutError(JetError):
    """Waiting for a job ran out of time."""


class MemberNotFoundError(JetError):
    """No member of that uuid."""


class SnapshotNotFoundError(JetError):
    """No named snapshot of that name."""


class InvalidNameError(JetError, ValueError):
    """A name (of a snapshot, a job, a cluster) that jetmq cannot use: empty, too long,
    with control characters, or, for names that become file names, with path parts."""


class SerializationError(JetError):
    """A pipeline, its functions or an item could not be pickled."""


class RemoteError(JetError):
    """The master answered a request with an error of a kind this client does not know."""


def error_class(name: str) -> type[JetError]:
    """The JetError subclass called ``name``, or RemoteError when there is none."""
    cls = globals().get(name)
    if isinstance(cls, type) and issubclass(cls, JetError):
        return cls
    return RemoteError
