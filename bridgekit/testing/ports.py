"""Free TCP port allocation for test servers.

A port the kernel hands out for ``bind(0)`` comes from the ephemeral range, the same range it
takes source ports of outgoing connections from. Between the moment a test picks a port and the
moment a server (often another process, started seconds later) binds it, any outgoing
connection on the machine may take it, and the server fails with "address already in use". So
ports are drawn at random from below the ephemeral range, where only listeners live.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_given: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_LOW = 10000
_HIGH = max(_LOW + 1000, min(_ephemeral_low(), 65536)) - 1


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that is free now and outside the ephemeral range, never the
    same twice in one process."""
    for _ in range(200):
        port = random.randint(_LOW, _HIGH)
        if port in _given:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _given.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # a crowded machine
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
