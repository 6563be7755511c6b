"""A network partition between one agent and the broker, made with a network namespace.

The agent runs in its own namespace, joined to this machine's by a veth pair with link-local
addresses (nothing leaves the machine); the broker listens on the host end too. Cutting the link
(``ip link set ... down``) drops every packet both ways, with no reset: TCP on both sides finds
out only by its keepalive, as with a cable cut or a dead LTE cell. Needs root (CAP_NET_ADMIN).
"""

from __future__ import annotations

import os
import re
import subprocess


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


class Partitionable:
    """Namespace ``name`` reaching the host at ``host_address`` over a veth pair."""

    def __init__(self, index: int) -> None:
        remove_stale()
        self.name = f"mm{os.getpid()}n{index}"
        self.host_if, self.ns_if = f"mm{os.getpid() % 100000}h{index}", "eth0"
        subnet = free_subnet()
        self.host_address = f"169.254.{subnet}.1"
        self.ns_address = f"169.254.{subnet}.2"
        _ip("netns", "add", self.name)
        try:
            _ip("link", "add", self.host_if, "type", "veth", "peer", "name", f"{self.host_if}p")
            _ip("link", "set", f"{self.host_if}p", "netns", self.name)
            _ip("-n", self.name, "link", "set", f"{self.host_if}p", "name", self.ns_if)
            _ip("addr", "add", f"{self.host_address}/30", "dev", self.host_if)
            _ip("-n", self.name, "addr", "add", f"{self.ns_address}/30", "dev", self.ns_if)
            _ip("link", "set", self.host_if, "up")
            _ip("-n", self.name, "link", "set", self.ns_if, "up")
            _ip("-n", self.name, "link", "set", "lo", "up")
        except subprocess.CalledProcessError:
            self.close()
            raise

    @property
    def prefix(self) -> tuple[str, ...]:
        """Run a command inside: ``[*prefix, command...]``."""
        return ("ip", "netns", "exec", self.name)

    def cut(self) -> None:
        _ip("link", "set", self.host_if, "down")

    def heal(self) -> None:
        _ip("link", "set", self.host_if, "up")

    def close(self) -> None:
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


def free_subnet() -> int:
    """A 169.254.N.0/30 no interface of this machine uses (another run may hold one)."""
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    for n in range(100, 250):
        if f"169.254.{n}." not in used:
            return n
    raise RuntimeError("no free 169.254.N.0/30 for a simulated network")


def remove_stale() -> None:
    """Namespaces and links of runs that died without cleaning up (named mm<pid>n<i>/mm<pid>h<i>
    by this module), so their routes cannot shadow a new run's."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for match in re.finditer(r"^mm(\d+)n(\d+)", listed, re.MULTILINE):
        pid, index = int(match.group(1)), match.group(2)
        if not os.path.exists(f"/proc/{pid}"):
            subprocess.run(["ip", "link", "del", f"mm{pid % 100000}h{index}"], capture_output=True)
            subprocess.run(["ip", "netns", "del", match.group(0)], capture_output=True)


def available() -> str | None:
    """None, or why partitions cannot be made here."""
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN)"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True)
    return None if probe.returncode == 0 else "the ip command cannot manage network namespaces"
