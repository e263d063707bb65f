"""Loopback port helpers for the local stack."""

from __future__ import annotations

import ipaddress
import socket
import time

from cdr_platform.errors import PlatformError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def is_listening(host: str, port: int) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, deadline_s: float) -> bool:
    """Poll until host:port accepts connections or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if is_listening(host, port):
            return True
        time.sleep(0.05)
    return False


class NotLoopbackError(PlatformError):
    """An endpoint of the devstack names a host other than this machine's loopback."""


def loopback_bind_host(host: str) -> str:
    """The address to listen on for an endpoint's ``host``: loopback only, ``localhost`` as 127.0.0.1.

    Raises ``NotLoopbackError`` for any other host: the devstack never listens beyond this machine.
    """
    if host == "localhost":
        return "127.0.0.1"
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: only localhost is known to be loopback
        loopback = False
    if not loopback:
        raise NotLoopbackError(
            f"the devstack listens on loopback only, not on {host!r}: use 127.0.0.1 in the endpoint"
        )
    return host
