"""The internet sockets of a process tree, read from /proc (Linux): what the Ray tests use to
show that a local study talks over the loopback interface only."""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

LISTEN = "0A"  # the state code of a listening socket in /proc/net/tcp


@dataclass(frozen=True)
class InetSocket:
    protocol: str
    local: ipaddress.IPv4Address | ipaddress.IPv6Address
    remote: ipaddress.IPv4Address | ipaddress.IPv6Address
    listening: bool


def descendants(root: int) -> set[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in os.scandir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(fd.path)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:  # the process ended
        pass
    return inodes


def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return ipaddress.IPv4Address(socket.inet_ntop(socket.AF_INET, raw[::-1]))
    words = struct.unpack("<4I", raw)  # four host-order 32-bit words
    address = ipaddress.IPv6Address(struct.pack(">4I", *words))
    return address.ipv4_mapped or address


def sockets_of(pids: set[int]) -> list[InetSocket]:
    """Every TCP and UDP socket (IPv4 and IPv6) that one of `pids` holds open."""
    inodes = set().union(*(_socket_inodes(pid) for pid in pids)) if pids else set()
    found = []
    for protocol in ("tcp", "tcp6", "udp", "udp6"):
        try:
            lines = Path(f"/proc/net/{protocol}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[9] not in inodes:
                continue
            local, remote = (_address(field.split(":")[0]) for field in fields[1:3])
            listening = protocol.startswith("tcp") and fields[3] == LISTEN
            found.append(InetSocket(protocol, local, remote, listening))
    return found


def not_loopback(found: list[InetSocket]) -> list[InetSocket]:
    """The sockets bound to anything but the loopback interface (0.0.0.0 included), or
    connected to anything but it (an unconnected socket's remote address is 0.0.0.0)."""
    return [s for s in found
            if not s.local.is_loopback or not (s.remote.is_loopback or s.remote.is_unspecified)]
