"""The control-plane protocol: one frozen dataclass per message, and its wire form.

``codec`` defines the wire form and the registry; ``cluster``, ``jobs`` and ``logs``
the messages. Everything is re-exported here, so callers write ``protocol.Hello``.
"""
from jetmq.protocol.codec import (
    MAGIC,
    PROTOCOL_VERSION,
    ProtocolError,
    decode,
    encode,
    message_types,
    pack_serialized,
    unpack_serialized,
)
from jetmq.protocol.cluster import *  # noqa: F401,F403 (the messages)
from jetmq.protocol.jobs import *  # noqa: F401,F403 (the messages)
from jetmq.protocol.logs import *  # noqa: F401,F403 (the messages)
from jetmq.protocol.waits import *  # noqa: F401,F403 (the messages)
