"""Which address of this host other hosts can reach it at.

A member binds its data socket and tells the master an address its peers connect to.
``127.0.0.1`` or ``0.0.0.0`` is no such address once peers live on other hosts, so
by default a member advertises the address of the interface its traffic to the
master leaves from (asking the kernel's routing table, without sending a packet);
a master bound to every interface (``0.0.0.0``) has its forked members advertise the
host's first non-loopback IPv4 address. ``--advertise HOST`` overrides both.
"""
from __future__ import annotations

import ipaddress
import socket


WILDCARDS = frozenset({"0.0.0.0", "*", "::", "[::]"})


def is_wildcard(host: str) -> bool:
    return host in WILDCARDS


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or name (a name resolving to one)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        try:
            return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
        except (OSError, ValueError):
            return False


def route_source_address(host: str, port: int) -> str:
    """The local address the kernel would send from to reach ``host:port`` (no packet is sent)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((host.strip("[]"), port))
            return probe.getsockname()[0]
    except OSError:
        return primary_address()


def primary_address() -> str:
    """The first non-loopback IPv4 address of this host, by interface name; 127.0.0.1 if none."""
    import psutil  # here, not at load: the CLI's commands import this module and need no psutil

    for _name, addresses in sorted(psutil.net_if_addrs().items()):
        for address in addresses:
            if address.family == socket.AF_INET and not ipaddress.ip_address(address.address).is_loopback:
                return address.address
    return "127.0.0.1"


def advertised_host(bind_host: str, advertise: str | None, master_host: str | None, master_port: int = 5701) -> str:
    """The host a member tells its peers: ``advertise`` if given; the bound address if it is
    one; else (bound to every interface) the way to the master, or this host's first
    non-loopback address when the master is here too."""
    if advertise:
        return advertise
    if not is_wildcard(bind_host):
        return bind_host
    if master_host and not is_loopback(master_host) and not is_wildcard(master_host):
        return route_source_address(master_host, master_port)
    return primary_address()
