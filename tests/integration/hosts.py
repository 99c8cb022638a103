"""Hosts for multi-host tests: Linux network namespaces on a bridge, made and removed by the test.

Each "host" is a network namespace with one veth link into a bridge in the root
namespace, an address of a private 10.x.y.0/24 that only it holds, and (for the
processes started in it) a hostname of its own (``unshare --uts``). The bridge holds
the subnet's .254, so the test process itself can be a client of a master on a host.
Everything a test makes is removed when it ends; ``skip_unless_possible()`` skips a
test, with the reason, where namespaces cannot be made (not root, no iproute2).
"""
from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, check=check)


def skip_unless_possible() -> None:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    for tool in ("ip", "tc", "unshare"):
        if shutil.which(tool) is None:
            pytest.skip(f"network namespaces need {tool} (iproute2, util-linux)")
    name = f"jq-probe-{os.getpid()}"
    made = _run("ip", "netns", "add", name, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {made.stderr.strip()}")
    _run("ip", "netns", "del", name, check=False)


@dataclass
class Host:
    name: str  # the namespace, and the hostname of what runs in it
    address: str
    link: str  # its veth end in the root namespace (the bridge's port)

    def command(self, *argv: str, hide: tuple[str, ...] = ()) -> list[str]:
        """``argv`` run in this host's namespace, under its own hostname; the directories in
        ``hide`` are covered by an empty tmpfs for it (a host that does not mount them)."""
        mounts = "".join(f"mount -t tmpfs jetmq-hidden {path} && " for path in hide)
        script = f'{mounts}hostname {self.name} && exec "$@"'
        return ["ip", "netns", "exec", self.name, "unshare", "--uts", "--mount", "--propagation", "private",
                "sh", "-c", script, "sh", *argv]

    def jetmq(self, tool: str, *args: str, hide: tuple[str, ...] = ()) -> list[str]:
        module = {"jet": "jetmq.cli.jet", "start": "jetmq.cli.start", "stop": "jetmq.cli.stop"}[tool]
        return self.command(sys.executable, "-m", module, *args, hide=hide)

    def link_down(self) -> None:
        _run("ip", "link", "set", self.link, "down")

    def link_up(self) -> None:
        _run("ip", "link", "set", self.link, "up")

    def impair(self, netem: str, fallback: str = "tbf rate 4mbit burst 16kbit latency 300ms") -> str:
        """Delay and lose this host's packets with tc netem (e.g. ``delay 40ms loss 5%``); on a
        kernel without netem, shape its link with ``fallback`` instead (a slow link: delays,
        no loss). The qdisc applied, as a text."""
        for qdisc in (netem and f"netem {netem}", fallback):
            if qdisc and _run("tc", "qdisc", "replace", "dev", self.link, "root", *qdisc.split(),
                              check=False).returncode == 0:
                return qdisc
        raise RuntimeError(f"cannot impair {self.link}: neither netem nor {fallback.split()[0]} is available")

    def heal(self) -> None:
        _run("tc", "qdisc", "del", "dev", self.link, "root", check=False)


@dataclass
class Network:
    prefix: str  # "10.x.y"
    bridge: str
    hosts: list[Host] = field(default_factory=list)

    @property
    def gateway(self) -> str:
        return f"{self.prefix}.254"

    def add_host(self, name: str) -> Host:
        index = len(self.hosts) + 1
        namespace = f"{self.bridge}-{name}"
        inside, outside = f"jqi{self.bridge[-5:]}{index}", f"jqo{self.bridge[-5:]}{index}"
        _run("ip", "netns", "add", namespace)
        _run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        _run("ip", "link", "set", inside, "netns", namespace)
        _run("ip", "link", "set", outside, "master", self.bridge)
        _run("ip", "link", "set", outside, "up")
        address = f"{self.prefix}.{index}"
        for step in (("addr", "add", f"{address}/24", "dev", inside), ("link", "set", inside, "up"),
                     ("link", "set", "lo", "up")):
            _run("ip", "netns", "exec", namespace, "ip", *step)
        host = Host(namespace, address, outside)
        self.hosts.append(host)
        return host

    def remove(self) -> None:
        for host in self.hosts:
            _run("ip", "netns", "del", host.name, check=False)
            _run("ip", "link", "del", host.link, check=False)
        _run("ip", "link", "del", self.bridge, check=False)


def make_network() -> Network:
    """A bridge on a random private subnet no interface here uses yet."""
    used = _run("ip", "-4", "addr").stdout
    rng = random.Random()
    for _ in range(100):
        prefix = f"10.{rng.randint(100, 250)}.{rng.randint(0, 250)}"
        if f"inet {prefix}." not in used:
            break
    bridge = f"jqbr{os.getpid() % 100000}"
    _run("ip", "link", "add", bridge, "type", "bridge")
    network = Network(prefix, bridge)
    try:
        _run("ip", "addr", "add", f"{network.gateway}/24", "dev", bridge)
        _run("ip", "link", "set", bridge, "up")
    except subprocess.CalledProcessError:
        network.remove()
        raise
    return network
