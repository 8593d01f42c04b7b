"""Which TCP addresses are listening, read from /proc (Linux): no tool to install, no guessing."""
from __future__ import annotations

import ipaddress
from typing import Collection, List, Optional, Tuple

_LISTEN = "0A"


def _address(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)  # 32-bit words in host (little-endian) order
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    ip = ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
    return str(ip.ipv4_mapped or ip)


def listening(port: Optional[int] = None, inodes: Optional[Collection[str]] = None) -> List[Tuple[str, int]]:
    """(host, port) of every listening TCP socket, on ``port`` and/or among the socket ``inodes``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            fields = line.split()
            host, hex_port = fields[1].split(":")
            if fields[3] != _LISTEN or (port is not None and int(hex_port, 16) != port):
                continue
            if inodes is None or fields[9] in inodes:
                found.append((_address(host), int(hex_port, 16)))
    return found


def all_loopback(sockets: List[Tuple[str, int]]) -> bool:
    return all(ipaddress.ip_address(host).is_loopback for host, _ in sockets)
