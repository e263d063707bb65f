"""The devstack listens on loopback only: kinesis-local (both its ports) and the event store."""

from __future__ import annotations

import ipaddress
import json
import socket
from pathlib import Path

import psutil
import pytest

from cdr_platform.devstack.ports import NotLoopbackError, loopback_bind_host
from cdr_platform.devtools.stack import devstack_for
from tests.conftest import local_settings

pytestmark = pytest.mark.integration


def _non_loopback_addresses() -> list[str]:
    """This machine's own addresses other than loopback (IPv6 link-local ones need a scope: skipped)."""
    found = []
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            ip = ipaddress.ip_address(address.address.split("%")[0])
            if not ip.is_loopback and not ip.is_link_local:
                found.append(str(ip))
    return found


def _listening(pid: int) -> list[tuple[str, int]]:
    connections = psutil.Process(pid).net_connections(kind="inet")
    return [(c.laddr.ip, c.laddr.port) for c in connections if c.status == psutil.CONN_LISTEN]


def test_services_listen_on_loopback_and_refuse_other_addresses(tmp_path: Path) -> None:
    settings = local_settings(tmp_path)
    stack = devstack_for(settings, persistent=False)
    with stack:
        pids = [service["pid"] for service in json.loads(stack.state_file.read_text()).values()]
        sockets = [address for pid in pids for address in _listening(pid)]
        assert len(sockets) >= 3, sockets  # kinesis-local's plain and TLS ports, the event store
        for ip, port in sockets:
            ip = ip.removeprefix("::ffff:")  # gRPC binds 127.0.0.1 as an IPv4-mapped IPv6 socket
            assert ipaddress.ip_address(ip).is_loopback, f"port {port} listens on {ip}"
        others = _non_loopback_addresses()
        if not others:
            pytest.skip("this machine has no address other than loopback to try the ports on")
        for address in others:
            for _, port in sockets:
                with pytest.raises(OSError):
                    socket.create_connection((address, port), timeout=2).close()


def test_an_endpoint_on_another_host_is_refused() -> None:
    assert loopback_bind_host("localhost") == "127.0.0.1"
    assert loopback_bind_host("::1") == "::1"
    for host in ("0.0.0.0", "192.0.2.7", "example.com"):
        with pytest.raises(NotLoopbackError, match="loopback only"):
            loopback_bind_host(host)
