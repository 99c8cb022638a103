"""What every ZeroMQ socket of ours shares: the process's context, sending a message's
frames, endpoints, monitor events."""
from __future__ import annotations

import zmq


def parse_monitor_message(frames: list[bytes]) -> dict:
    """zmq's parse of a monitor event, imported when the first event comes: its module
    imports asyncio, which a client whose handshakes succeed never needs."""
    from zmq.utils.monitor import parse_monitor_message as parse

    return parse(frames)


#: send_all's flag to wait for room in the queue (its default raises zmq.Again at once)
BLOCK = 0
_NOBLOCK = int(zmq.NOBLOCK)
_MORE = int(zmq.SNDMORE)


def send_all(sock: zmq.Socket, frames: list, flags: int = _NOBLOCK, copy: bool = True) -> None:
    """``sock.send_multipart(frames, flags)`` without its per-call type checks and flag
    arithmetic on enums: a member sends a few messages a second, each after a sleep, when
    every Python call on the way costs several times its warm cost. As send_multipart, the
    first frame decides (a full queue raises zmq.Again there); the rest follow it."""
    last = len(frames) - 1
    send = sock.send
    more = flags | _MORE
    for i in range(last):
        send(frames[i], more, copy=copy)
    send(frames[last], flags, copy=copy)


def context() -> zmq.Context:
    """The process's ZeroMQ context (a new one after a fork)."""
    return zmq.Context.instance()


def tcp_endpoint(host: str, port: int | str) -> str:
    return f"tcp://{host}:{port}"
