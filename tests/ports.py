"""Ports for the servers the tests start, taken where no other process can be handed them.

A port found free by binding to port 0 comes from the kernel's ephemeral range, the same range
every outgoing connection and every Jupyter kernel's ZeroMQ sockets draw from. Between the test
choosing it and its server binding it (seconds, for a hub's formgraders), a parallel test can take
it: CI once lost a hub that way ("port ... is not available"). Ports below that range are only ever
taken by a process that names them, so the tests choose there.
"""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

# Above the registered services a machine may run (8000, 8888, 9000, ...).
LOWEST = 20000
# Not a test input, only where servers listen: seeded by the process so that xdist's workers
# search in different places.
_RNG = random.Random(os.getpid())
# Handed out by this process: a port chosen for a server that has not bound it yet is still taken.
_GIVEN: set[int] = set()
# What course_hub/jupyterhub_config.py takes from COURSE_HUB_PORT=P: the proxy P, the hub P+1,
# the proxy's API P+2, and P+10+i for course i's formgrader (room for four courses).
HUB_PORTS = (0, 1, 2, 10, 11, 12, 13)


def ephemeral_low() -> int:
    """The first port the kernel hands out for port 0 and outgoing connections."""
    try:
        return int(
            Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0]
        )
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port_block(offsets: tuple[int, ...] = (0,)) -> int:
    """A base port P with P + o free for each offset, all below the ephemeral range."""
    top = ephemeral_low() - max(offsets) - 1
    for _ in range(200):
        base = _RNG.randrange(LOWEST, top)
        ports = {base + o for o in offsets}
        if not ports & _GIVEN and all(_free(p) for p in ports):
            _GIVEN.update(ports)
            return base
    raise RuntimeError(f"no block of free ports for offsets {offsets} below {top}")


def free_port() -> int:
    """One free port below the ephemeral range."""
    return free_port_block()


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
